package ociattest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Media types and annotations of the two layouts. The legacy layout is what
// sigstore policy-controller key authorities and Kyverno "Cosign" read; the
// referrer layout is what cosign v3 and Kyverno "SigstoreBundle" read.
const (
	// DSSEMediaType is the layer media type of a DSSE envelope in the
	// legacy ".att" image.
	DSSEMediaType types.MediaType = "application/vnd.dsse.envelope.v1+json"
	// BundleMediaType is the artifactType and layer media type of a Sigstore
	// bundle referrer.
	BundleMediaType types.MediaType = "application/vnd.dev.sigstore.bundle.v0.3+json"
	// EmptyMediaType is the OCI 1.1 empty descriptor's media type, used as
	// the referrer's config.
	EmptyMediaType types.MediaType = "application/vnd.oci.empty.v1+json"

	// AnnotationSignature marks a legacy layer as an attestation ("" value).
	AnnotationSignature = "dev.cosignproject.cosign/signature"
	// AnnotationPredicateType carries the predicate type on a legacy layer.
	AnnotationPredicateType = "predicateType"
	// AnnotationBundleContent says what the bundle holds ("dsse-envelope").
	AnnotationBundleContent = "dev.sigstore.bundle.content"
	// AnnotationBundlePredicateType carries the predicate type on a
	// referrer manifest.
	AnnotationBundlePredicateType = "dev.sigstore.bundle.predicateType"
)

// maxBlob bounds an attestation blob read from a registry.
const maxBlob = 16 << 20

// ErrNotFound reports an image with no attestation in either layout.
var ErrNotFound = errors.New("no attestations attached")

// Attestation is one signed statement in the two forms that are attached.
type Attestation struct {
	PredicateType string
	Bundle        []byte // Sigstore bundle JSON (referrer layout)
	Envelope      []byte // DSSE envelope JSON (legacy layout)
}

// AttTag returns the legacy tag "sha256-<hex>.att" for an image digest.
func AttTag(d name.Digest) name.Tag {
	return d.Context().Tag(strings.Replace(d.DigestStr(), ":", "-", 1) + ".att")
}

// Attach pushes atts for the image manifest (or index) d in both layouts:
//
//   - legacy: every envelope as a layer (DSSEMediaType, annotations
//     AnnotationSignature "" and AnnotationPredicateType) of the OCI image
//     tagged AttTag(d); layers already there are kept and an identical
//     envelope is not added twice;
//   - referrer: every bundle as the single layer (BundleMediaType) of an
//     OCI image manifest with artifactType BundleMediaType, the empty
//     config, annotations AnnotationBundleContent "dsse-envelope" and
//     AnnotationBundlePredicateType, and subject d (OCI image spec 1.1,
//     manifest.md "subject"). A registry without the referrers API gets the
//     referrers tag schema ("sha256-<hex>" index) instead (distribution
//     spec 1.1, "Referrers Tag Schema").
//
// Attach is idempotent: pushing the same attestations again changes nothing.
func Attach(ctx context.Context, d name.Digest, atts []Attestation, opts ...remote.Option) error {
	if err := AttachLegacy(ctx, d, atts, opts...); err != nil {
		return err
	}
	return AttachReferrers(ctx, d, atts, opts...)
}

// AttachLegacy pushes only the legacy layout of Attach.
func AttachLegacy(ctx context.Context, d name.Digest, atts []Attestation, opts ...remote.Option) error {
	opts = append([]remote.Option{remote.WithContext(ctx)}, opts...)
	if err := attachLegacy(d, atts, opts); err != nil {
		return fmt.Errorf("attaching %s: %w", AttTag(d), err)
	}
	return nil
}

// AttachReferrers pushes only the referrer layout of Attach.
func AttachReferrers(ctx context.Context, d name.Digest, atts []Attestation, opts ...remote.Option) error {
	opts = append([]remote.Option{remote.WithContext(ctx)}, opts...)
	subject, err := remote.Head(d, opts...)
	if err != nil {
		return fmt.Errorf("reading subject %s: %w", d, err)
	}
	for _, a := range atts {
		if err := attachReferrer(d, subject, a, opts); err != nil {
			return fmt.Errorf("attaching referrer for %s: %w", d, err)
		}
	}
	return nil
}

func attachLegacy(d name.Digest, atts []Attestation, opts []remote.Option) error {
	tag := AttTag(d)
	var base v1.Image
	existing, err := remote.Image(tag, opts...)
	switch {
	case err == nil:
		base = existing
	case isNotFound(err):
		base = mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	default:
		return err
	}
	have := map[v1.Hash]bool{}
	layers, err := base.Layers()
	if err != nil {
		return err
	}
	for _, l := range layers {
		h, err := l.Digest()
		if err != nil {
			return err
		}
		have[h] = true
	}
	img := base
	added := 0
	for _, a := range atts {
		l := static.NewLayer(a.Envelope, DSSEMediaType)
		h, err := l.Digest()
		if err != nil {
			return err
		}
		if have[h] {
			continue
		}
		have[h] = true
		img, err = mutate.Append(img, mutate.Addendum{
			Layer:       l,
			Annotations: map[string]string{AnnotationSignature: "", AnnotationPredicateType: a.PredicateType},
		})
		if err != nil {
			return err
		}
		added++
	}
	if added == 0 {
		return nil
	}
	return remote.Write(tag, img, opts...)
}

// rawManifest is a manifest pushed as bytes.
type rawManifest struct {
	raw []byte
	mt  types.MediaType
}

func (r rawManifest) RawManifest() ([]byte, error)        { return r.raw, nil }
func (r rawManifest) MediaType() (types.MediaType, error) { return r.mt, nil }

// emptyJSON is the OCI 1.1 empty descriptor's content.
var emptyJSON = []byte("{}")

func attachReferrer(d name.Digest, subject *v1.Descriptor, a Attestation, opts []remote.Option) error {
	repo := d.Context()
	cfg := static.NewLayer(emptyJSON, EmptyMediaType)
	blob := static.NewLayer(a.Bundle, BundleMediaType)
	for _, l := range []v1.Layer{cfg, blob} {
		if err := remote.WriteLayer(repo, l, opts...); err != nil {
			return err
		}
	}
	cfgHash, _ := cfg.Digest()
	blobHash, _ := blob.Digest()
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		Config:        v1.Descriptor{MediaType: EmptyMediaType, Digest: cfgHash, Size: int64(len(emptyJSON)), Data: emptyJSON},
		Layers:        []v1.Descriptor{{MediaType: BundleMediaType, Digest: blobHash, Size: int64(len(a.Bundle))}},
		Annotations: map[string]string{
			AnnotationBundleContent:       "dsse-envelope",
			AnnotationBundlePredicateType: a.PredicateType,
		},
		Subject:      &v1.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size},
		ArtifactType: string(BundleMediaType),
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return err
	}
	h, _, err := v1.SHA256(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	return remote.Put(repo.Digest(h.String()), rawManifest{raw: raw, mt: types.OCIManifestSchema1}, opts...)
}

func isNotFound(err error) bool {
	var te *transport.Error
	if errors.As(err, &te) {
		if te.StatusCode == http.StatusNotFound {
			return true
		}
		for _, d := range te.Errors {
			if d.Code == transport.ManifestUnknownErrorCode || d.Code == transport.NameUnknownErrorCode {
				return true
			}
		}
	}
	return false
}

// Found is one attestation blob found for an image.
type Found struct {
	// Layout is "referrer" or "att".
	Layout string
	// PredicateType is the annotation, when present (not verified: only the
	// signed statement counts).
	PredicateType string
	// Data is a Sigstore bundle (referrer) or a DSSE envelope (att).
	Data []byte
	// Where names the manifest and layer it came from.
	Where string
}

// Find lists every attestation blob attached to d in either layout: the
// bundle layers of its referrers (through the referrers API, or the
// referrers tag schema when the registry lacks it) and the DSSE layers of
// its AttTag image. Nothing is verified here. With neither present it
// returns ErrNotFound.
func Find(ctx context.Context, d name.Digest, opts ...remote.Option) ([]Found, error) {
	opts = append([]remote.Option{remote.WithContext(ctx)}, opts...)
	var out []Found
	idx, err := remote.Referrers(d, opts...)
	if err != nil && !isNotFound(err) {
		return nil, fmt.Errorf("listing referrers of %s: %w", d, err)
	}
	if err == nil {
		im, err := idx.IndexManifest()
		if err != nil {
			return nil, fmt.Errorf("listing referrers of %s: %w", d, err)
		}
		for _, desc := range im.Manifests {
			// The artifactType in a listing is advisory (some registries
			// report the config media type): read the manifest itself.
			ref := d.Context().Digest(desc.Digest.String())
			got, err := remote.Get(ref, opts...)
			if err != nil {
				return nil, fmt.Errorf("reading referrer %s: %w", ref, err)
			}
			var m v1.Manifest
			if err := json.Unmarshal(got.Manifest, &m); err != nil {
				continue
			}
			for _, l := range m.Layers {
				if l.MediaType != BundleMediaType {
					continue
				}
				data, err := readBlob(d.Context(), l, opts)
				if err != nil {
					return nil, fmt.Errorf("reading referrer %s: %w", ref, err)
				}
				out = append(out, Found{Layout: "referrer", PredicateType: m.Annotations[AnnotationBundlePredicateType], Data: data, Where: ref.String()})
			}
		}
	}
	tag := AttTag(d)
	img, err := remote.Image(tag, opts...)
	switch {
	case err == nil:
		m, err := img.Manifest()
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", tag, err)
		}
		for _, l := range m.Layers {
			if l.MediaType != DSSEMediaType {
				continue
			}
			data, err := readBlob(d.Context(), l, opts)
			if err != nil {
				return nil, fmt.Errorf("reading %s: %w", tag, err)
			}
			out = append(out, Found{Layout: "att", PredicateType: l.Annotations[AnnotationPredicateType], Data: data, Where: tag.String() + "@" + l.Digest.String()})
		}
	case isNotFound(err):
	default:
		return nil, fmt.Errorf("reading %s: %w", tag, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w to %s", ErrNotFound, d)
	}
	return out, nil
}

func readBlob(repo name.Repository, desc v1.Descriptor, opts []remote.Option) ([]byte, error) {
	if desc.Size > maxBlob {
		return nil, fmt.Errorf("blob %s is %d bytes, over %d", desc.Digest, desc.Size, maxBlob)
	}
	l, err := remote.Layer(repo.Digest(desc.Digest.String()), opts...)
	if err != nil {
		return nil, err
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	// The registry returns the blob as stored; go-containerregistry checks
	// its digest while reading to EOF.
	b, err := io.ReadAll(io.LimitReader(rc, maxBlob+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > maxBlob {
		return nil, fmt.Errorf("blob %s over %d bytes", desc.Digest, maxBlob)
	}
	return b, nil
}

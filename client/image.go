package client

import (
	"context"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/vouchdev/vouch/client/imagefs"
	vouchv1 "github.com/vouchdev/vouch/proto/vouch/v1"
)

// Subject is what an attestation is about: a name for humans and the
// sha256 every verifier matches.
type Subject struct {
	Name   string
	SHA256 string // 64 lower-case hex
}

// Digest returns "sha256:<hex>".
func (s Subject) Digest() string { return "sha256:" + s.SHA256 }

func (s Subject) proto() *vouchv1.Subject {
	return &vouchv1.Subject{Name: s.Name, Digest: map[string]string{"sha256": s.SHA256}}
}

// Target is one VerifyPackages call: the claims and the subject(s) their
// attestation is about.
type Target struct {
	// Subject is the manifest (or index) digest attested.
	Subject Subject
	// Platform is "os/arch[/variant]" for a platform manifest of an index,
	// "index" for the index itself, "" for a single-platform image.
	Platform string
	Claims   []*vouchv1.PackageClaim
}

// ImageOptions control ImageTargets.
type ImageOptions struct {
	// Repository and Arch as in InstalledOptions.
	Repository string
	Arch       string
	// Remote options for go-containerregistry (auth, transport, context is
	// set from ctx).
	Remote []remote.Option
}

// apkArch maps an OCI platform to the apk arch name.
func apkArch(p *v1.Platform) string {
	if p == nil {
		return ""
	}
	switch p.Architecture {
	case "amd64":
		return "x86_64"
	case "arm64":
		return "aarch64"
	case "386":
		return "x86"
	case "arm":
		if p.Variant == "v6" {
			return "armhf"
		}
		return "armv7"
	case "loong64":
		return "loongarch64"
	default:
		return p.Architecture
	}
}

// ImageTargets pulls the image ref (tag or digest) and reads each
// platform's installed database from its layers (imagefs.ReadImage).
//
// A single-platform image gives one target whose subject is its manifest
// digest. A multi-platform index gives one target per platform manifest
// (subject: that manifest's digest; entries whose platform is
// "unknown/unknown", such as build attestations, are skipped) and then one
// target for the index digest whose claims are the union of every
// platform's: a deployment that resolves the tag gets the index digest,
// one that pins a platform gets the manifest digest, and both find an
// attestation listing exactly the packages inside.
func ImageTargets(ctx context.Context, ref string, o ImageOptions) ([]Target, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return nil, fmt.Errorf("%w: image reference %q: %v", ErrInput, ref, err)
	}
	ropts := append([]remote.Option{remote.WithContext(ctx)}, o.Remote...)
	desc, err := remote.Get(r, ropts...)
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", ref, err)
	}
	subjName := r.Context().Name()
	if !desc.MediaType.IsIndex() {
		img, err := desc.Image()
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", ref, err)
		}
		claims, err := imageClaims(img, o, "")
		if err != nil {
			return nil, err
		}
		return []Target{{Subject: Subject{Name: subjName, SHA256: desc.Digest.Hex}, Claims: claims}}, nil
	}
	idx, err := desc.ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("reading index %s: %w", ref, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("reading index %s: %w", ref, err)
	}
	var targets []Target
	union := &Target{Subject: Subject{Name: subjName, SHA256: desc.Digest.Hex}, Platform: "index"}
	seen := map[string]bool{}
	for _, m := range im.Manifests {
		if !m.MediaType.IsImage() || m.Platform == nil || m.Platform.OS == "unknown" {
			continue
		}
		img, err := idx.Image(m.Digest)
		if err != nil {
			return nil, fmt.Errorf("reading %s platform %s: %w", ref, m.Platform, err)
		}
		claims, err := imageClaims(img, o, apkArch(m.Platform))
		if err != nil {
			return nil, fmt.Errorf("platform %s: %w", m.Platform, err)
		}
		targets = append(targets, Target{Subject: Subject{Name: subjName, SHA256: m.Digest.Hex}, Platform: m.Platform.String(), Claims: claims})
		for _, c := range claims {
			k := c.Name + "\x00" + c.Version + "\x00" + c.Arch + "\x00" + c.Checksum + "\x00" + c.Repository
			if !seen[k] {
				seen[k] = true
				union.Claims = append(union.Claims, c)
			}
		}
	}
	if len(targets) == 0 {
		return nil, fmt.Errorf("%w: index %s has no platform images", ErrInput, ref)
	}
	return append(targets, *union), nil
}

func imageClaims(img v1.Image, o ImageOptions, platformArch string) ([]*vouchv1.PackageClaim, error) {
	files, err := imagefs.ReadImage(img)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInput, err)
	}
	if platformArch == "" {
		if cf, err := img.ConfigFile(); err == nil {
			platformArch = apkArch(cf.Platform())
		}
	}
	return ClaimsFromInstalled(files, InstalledOptions{Repository: o.Repository, Arch: o.Arch, DefaultArch: platformArch})
}

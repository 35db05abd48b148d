package deploy

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/spdx/tools-golang/spdx"
	"github.com/spdx/tools-golang/spdx/v2/common"

	"github.com/vouchdev/vouch/apk"
	"github.com/vouchdev/vouch/attest"
	"github.com/vouchdev/vouch/client/imagefs"
	"github.com/vouchdev/vouch/client/ociattest"
)

// Errors from the checks. Every one is a refusal; they are distinct so that
// a caller (and vouch check's exit code) can say why. Verification errors
// from attest (ErrBadSignature, ErrUnknownKey, …) are wrapped in
// ErrNoAttestation.
var (
	// ErrNoAttestation: no attestation for the subject verified with the
	// trusted keys (none attached, or every one failed; the message lists
	// why each failed).
	ErrNoAttestation = errors.New("no valid vouch attestation")
	// ErrTooOld: the newest valid attestation is older than MaxAge.
	ErrTooOld = errors.New("attestation is older than the maximum age")
	// ErrPackages: the installed database lists a package that the
	// attestation does not, or with another version or checksum.
	ErrPackages = errors.New("installed packages differ from the attestation")
	// ErrOptions: the options are unusable (no keys, malformed digest).
	ErrOptions = errors.New("invalid check options")
)

// Options control the checks.
type Options struct {
	// Keys are the trusted vouch public keys. Required.
	Keys *attest.KeySet
	// MaxAge, when positive, refuses an attestation created longer ago.
	MaxAge time.Duration
	// Now is the time MaxAge is measured from; zero means time.Now().
	Now time.Time
}

func (o Options) validate() error {
	if o.Keys == nil || len(o.Keys.IDs()) == 0 {
		return fmt.Errorf("%w: no trusted keys", ErrOptions)
	}
	if o.MaxAge < 0 {
		return fmt.Errorf("%w: negative maximum age", ErrOptions)
	}
	return nil
}

// Problem is one installed package the attestation does not vouch for.
type Problem struct {
	Name      string `json:"name"`
	Version   string `json:"version"`
	Arch      string `json:"arch"`
	Installed string `json:"installed_checksum"`
	// Attested lists what the attestation has for that name (version and
	// checksum), empty when it does not list the name at all.
	Attested []string `json:"attested,omitempty"`
	Reason   string   `json:"reason"`
}

// Result is the outcome of a check.
type Result struct {
	// Subject is "sha256:<hex>".
	Subject string `json:"subject"`
	// Source says where the verified attestation came from.
	Source string `json:"source"`
	// KeyID is the trusted key that signed it.
	KeyID string `json:"key_id"`
	// PredicateType is attest.PredicateTypeSPDX.
	PredicateType string `json:"predicate_type"`
	// Created is the SPDX document's creation time.
	Created time.Time `json:"created"`
	// Packages is the number of APK packages in the SPDX document.
	Packages int `json:"packages"`
	// Layouts counts valid attestations per layout ("referrer", "att",
	// "file") for an image.
	Layouts map[string]int `json:"layouts,omitempty"`
	// Checked is the number of installed packages compared (0 when no
	// installed database was compared).
	Checked int `json:"checked"`
	// Problems lists the installed packages that do not match.
	Problems []Problem `json:"problems,omitempty"`
	// Rejected lists attestations found but not valid, with the reason.
	Rejected []string `json:"rejected,omitempty"`

	doc *spdx.Document
}

// Document returns the verified SPDX document.
func (r *Result) Document() *spdx.Document { return r.doc }

// spdxTime is SPDX 2.3's creation time layout.
const spdxTime = "2006-01-02T15:04:05Z"

// verifyOne verifies one attestation for subject hex and returns its
// result, without the age check.
func verifyOne(data []byte, subjectHex, source string, keys *attest.KeySet) (*Result, error) {
	v, err := attest.Verify(data, keys, attest.Expect{SubjectSHA256: subjectHex, PredicateType: attest.PredicateTypeSPDX})
	if err != nil {
		return nil, err
	}
	if v.SPDX == nil || v.SPDX.CreationInfo == nil {
		return nil, fmt.Errorf("%w: SPDX document without creation info", attest.ErrMalformed)
	}
	created, err := time.Parse(spdxTime, v.SPDX.CreationInfo.Created)
	if err != nil {
		return nil, fmt.Errorf("%w: SPDX created %q: %v", attest.ErrMalformed, v.SPDX.CreationInfo.Created, err)
	}
	n := 0
	for _, p := range v.SPDX.Packages {
		if p != nil && isAPK(p) {
			n++
		}
	}
	return &Result{
		Subject:       "sha256:" + subjectHex,
		Source:        source,
		KeyID:         v.KeyID,
		PredicateType: v.Statement.PredicateType,
		Created:       created,
		Packages:      n,
		doc:           v.SPDX,
	}, nil
}

func (o Options) checkAge(r *Result) error {
	if o.MaxAge <= 0 {
		return nil
	}
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	if age := now.Sub(r.Created); age > o.MaxAge {
		return fmt.Errorf("%w: created %s (%s ago), maximum %s", ErrTooOld, r.Created.Format(time.RFC3339), age.Truncate(time.Second), o.MaxAge)
	}
	return nil
}

// ParseDigest parses "sha256:<64 hex>" and returns the hex.
func ParseDigest(s string) (string, error) {
	h, ok := strings.CutPrefix(s, "sha256:")
	if !ok || len(h) != 64 || strings.ToLower(h) != h {
		return "", fmt.Errorf("%w: digest %q is not sha256:<64 lower-case hex>", ErrOptions, s)
	}
	if _, err := hex.DecodeString(h); err != nil {
		return "", fmt.Errorf("%w: digest %q is not sha256:<64 lower-case hex>", ErrOptions, s)
	}
	return h, nil
}

// CheckBundle verifies one bundle or DSSE envelope file's content for the
// subject digest ("sha256:<hex>"): signature by a trusted key, subject,
// SPDX predicate type, and age. With installed non-nil it also compares
// the packages (ErrPackages, with Result.Problems). The Result is returned
// with every error but ErrOptions and ErrNoAttestation.
func CheckBundle(data []byte, digest string, installed []imagefs.Package, o Options) (*Result, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	h, err := ParseDigest(digest)
	if err != nil {
		return nil, err
	}
	r, err := verifyOne(data, h, "file", o.Keys)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoAttestation, err)
	}
	r.Layouts = map[string]int{"file": 1}
	if err := o.checkAge(r); err != nil {
		return r, err
	}
	if installed != nil {
		if err := r.compare(installed); err != nil {
			return r, err
		}
	}
	return r, nil
}

// ImageOptions control CheckImage.
type ImageOptions struct {
	Options
	// Installed, when non-nil, is compared instead of the image's own
	// installed database (e.g. from a root filesystem).
	Installed []imagefs.Package
	// SkipPackages turns the installed-database comparison off.
	SkipPackages bool
	// Remote options for go-containerregistry.
	Remote []remote.Option
}

// CheckImage resolves ref to its digest, finds the attestations attached
// to that digest in both layouts (ociattest.Find), verifies each and keeps
// the newest valid SPDX one, checks its age, and compares the image's
// installed database with it. For a multi-platform index the index
// digest's attestation is checked against every platform's database.
func CheckImage(ctx context.Context, ref string, o ImageOptions) (*Result, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		return nil, fmt.Errorf("%w: image reference %q: %v", ErrOptions, ref, err)
	}
	ropts := append([]remote.Option{remote.WithContext(ctx)}, o.Remote...)
	desc, err := remote.Get(r, ropts...)
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", ref, err)
	}
	d := r.Context().Digest(desc.Digest.String())
	found, err := ociattest.Find(ctx, d, o.Remote...)
	if err != nil {
		if errors.Is(err, ociattest.ErrNotFound) {
			return nil, fmt.Errorf("%w: %w", ErrNoAttestation, err)
		}
		return nil, err
	}
	var (
		best     *Result
		rejected []string
		layouts  = map[string]int{}
	)
	for _, f := range found {
		if f.PredicateType != "" && f.PredicateType != attest.PredicateTypeSPDX {
			continue // another predicate (the VSA); not what is checked here
		}
		res, err := verifyOne(f.Data, desc.Digest.Hex, f.Layout+" "+f.Where, o.Keys)
		if err != nil {
			rejected = append(rejected, f.Layout+" "+f.Where+": "+err.Error())
			continue
		}
		layouts[f.Layout]++
		if best == nil || res.Created.After(best.Created) {
			best = res
		}
	}
	if best == nil {
		return nil, fmt.Errorf("%w for %s: %s", ErrNoAttestation, d, strings.Join(rejected, "; "))
	}
	best.Layouts, best.Rejected = layouts, rejected
	if err := o.checkAge(best); err != nil {
		return best, err
	}
	if o.SkipPackages {
		return best, nil
	}
	installed := o.Installed
	if installed == nil {
		installed, err = imageInstalled(desc)
		if err != nil {
			return best, err
		}
	}
	if err := best.compare(installed); err != nil {
		return best, err
	}
	return best, nil
}

// imageInstalled reads the installed packages of an image, or of every
// platform image of an index.
func imageInstalled(desc *remote.Descriptor) ([]imagefs.Package, error) {
	var imgs []v1.Image
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			return nil, err
		}
		im, err := idx.IndexManifest()
		if err != nil {
			return nil, err
		}
		for _, m := range im.Manifests {
			if !m.MediaType.IsImage() || (m.Platform != nil && m.Platform.OS == "unknown") {
				continue
			}
			img, err := idx.Image(m.Digest)
			if err != nil {
				return nil, err
			}
			imgs = append(imgs, img)
		}
	} else {
		img, err := desc.Image()
		if err != nil {
			return nil, err
		}
		imgs = append(imgs, img)
	}
	var all []imagefs.Package
	for _, img := range imgs {
		files, err := imagefs.ReadImage(img)
		if err != nil {
			return nil, fmt.Errorf("reading the image's installed database: %w", err)
		}
		pkgs, err := files.Packages()
		if err != nil {
			return nil, fmt.Errorf("reading the image's installed database: %w", err)
		}
		all = append(all, pkgs...)
	}
	return all, nil
}

// attested is one APK package of the SPDX document.
type attested struct {
	version  string
	checksum apk.Checksum
}

func isAPK(p *spdx.Package) bool {
	for _, ref := range p.PackageExternalReferences {
		if ref != nil && strings.HasPrefix(ref.Locator, "pkg:apk/") {
			return true
		}
	}
	return false
}

// spdxIndex maps package name to what the document attests for it: the
// apk identity is the SHA1 checksum (apk v2) or, without one, the SHA256.
func spdxIndex(doc *spdx.Document) map[string][]attested {
	out := map[string][]attested{}
	for _, p := range doc.Packages {
		if p == nil || !isAPK(p) {
			continue
		}
		var c apk.Checksum
		for _, cs := range p.PackageChecksums {
			b, err := hex.DecodeString(cs.Value)
			if err != nil {
				continue
			}
			if cs.Algorithm == common.SHA1 && len(b) == 20 {
				c = apk.Checksum{Alg: apk.ChecksumSHA1, Digest: b}
				break
			}
			if cs.Algorithm == common.SHA256 && len(b) == 32 && c.IsZero() {
				c = apk.Checksum{Alg: apk.ChecksumSHA256, Digest: b}
			}
		}
		out[p.PackageName] = append(out[p.PackageName], attested{version: p.PackageVersion, checksum: c})
	}
	return out
}

// compare checks that every installed package appears in the document with
// the same version and checksum.
func (r *Result) compare(installed []imagefs.Package) error {
	idx := spdxIndex(r.doc)
	r.Checked = len(installed)
	r.Problems = nil
	for _, p := range installed {
		cands := idx[p.Name]
		ok := false
		var have []string
		for _, a := range cands {
			if a.version == p.Version && a.checksum.Equal(p.Checksum) {
				ok = true
				break
			}
			have = append(have, a.version+" "+a.checksum.String())
		}
		if ok {
			continue
		}
		pr := Problem{Name: p.Name, Version: p.Version, Arch: p.Arch, Installed: p.Checksum.String(), Attested: have}
		switch {
		case len(cands) == 0:
			pr.Reason = "not in the attestation"
		case !hasVersion(cands, p.Version):
			pr.Reason = "another version is attested"
		default:
			pr.Reason = "checksum differs from the attested one"
		}
		r.Problems = append(r.Problems, pr)
	}
	if len(r.Problems) == 0 {
		return nil
	}
	sort.Slice(r.Problems, func(i, j int) bool { return r.Problems[i].Name < r.Problems[j].Name })
	names := make([]string, len(r.Problems))
	for i, p := range r.Problems {
		names[i] = p.Name + "-" + p.Version + " (" + p.Reason + ")"
	}
	return fmt.Errorf("%w: %s", ErrPackages, strings.Join(names, ", "))
}

func hasVersion(cands []attested, v string) bool {
	for _, a := range cands {
		if a.version == v {
			return true
		}
	}
	return false
}

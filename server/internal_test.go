package server

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vouchdev/vouch/apk"
	"github.com/vouchdev/vouch/attest"
	"github.com/vouchdev/vouch/index"
	vouchv1 "github.com/vouchdev/vouch/proto/vouch/v1"
	"github.com/vouchdev/vouch/store"
	"github.com/vouchdev/vouch/store/sqlite"
)

// fakeIndex is a hand-written fake of Indexes with function fields.
type fakeIndex struct {
	lookup func(repo, arch, name, version string) index.Lookup
}

func (f *fakeIndex) Resolve(u string) (string, bool) { return "testrepo", u == "https://repo.test/os" }
func (f *fakeIndex) Lookup(_ context.Context, repo, arch, name, version string) index.Lookup {
	return f.lookup(repo, arch, name, version)
}
func (f *fakeIndex) Refresh(context.Context, string, string) ([]index.RefreshResult, error) {
	return nil, nil
}
func (f *fakeIndex) Status(context.Context, string) []index.RepositoryStatus { return nil }
func (f *fakeIndex) Repository(string) (index.RepositoryConfig, bool) {
	return index.RepositoryConfig{}, false
}
func (f *fakeIndex) Ready() bool { return true }
func (f *fakeIndex) AcceptEquivocation(context.Context, string, string, string, string, apk.Checksum, string, string) (store.Event, error) {
	return store.Event{}, nil
}

var testSum = apk.Checksum{Alg: apk.ChecksumSHA1, Digest: []byte("0123456789abcdefghij")}

func testClaims() []*vouchv1.PackageClaim {
	return []*vouchv1.PackageClaim{{Name: "hello", Version: "1-r0", Arch: "x86_64", Repository: "https://repo.test/os", Checksum: testSum.String()}}
}

// failingLedger is a store whose ledger writes fail (and counts them).
type failingLedger struct {
	store.Store
	calls *atomic.Int32
}

func (f failingLedger) AppendAttestation(context.Context, store.Attestation) (string, error) {
	f.calls.Add(1)
	return "", errors.New("disk full")
}

func newTestServer(t *testing.T, st func(store.Store) store.Store) *Server {
	t.Helper()
	db, err := sqlite.Open(context.Background(), sqlite.Config{Path: t.TempDir() + "/vouch.db"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	priv, _, _, err := attest.GenerateKey(attest.KeyECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := attest.ParsePrivateKeyPEM(priv)
	if err != nil {
		t.Fatal(err)
	}
	idx := &fakeIndex{lookup: func(_, _, _, _ string) index.Lookup {
		fetched := time.Unix(1_700_000_000, 0).UTC()
		return index.Lookup{Outcome: index.Current, Checksum: testSum, Snapshot: index.SnapshotInfo{
			IndexURL: "https://repo.test/os/x86_64/APKINDEX.tar.gz", SHA256: strings.Repeat("1", 64), Keys: []string{"k.rsa.pub"},
			FetchedAt: fetched, ConfirmedAt: fetched,
		}}
	}}
	s, err := New(Config{Repositories: []Repository{{Name: "testrepo", URL: "https://repo.test/os", Distro: "wolfi"}},
		Auth:     AuthConfig{Disabled: true},
		Verifier: attest.Verifier{Version: "test"},
		Policy:   attest.Policy{URI: "https://vouch.test/policy", SHA256: strings.Repeat("0", 64)}},
		Deps{Index: idx, Store: st(db), Signer: signer})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestLedgerFailureIssuesNothing(t *testing.T) {
	var calls atomic.Int32
	s := newTestServer(t, func(st store.Store) store.Store { return failingLedger{st, &calls} })
	req := &vouchv1.VerifyPackagesRequest{
		Subjects: []*vouchv1.Subject{{Name: "app", Digest: map[string]string{"sha256": strings.Repeat("ab", 32)}}},
		Packages: testClaims(),
		Options:  &vouchv1.VerifyOptions{Attest: true},
	}
	info := &grpc.UnaryServerInfo{FullMethod: "/vouch.v1.BuilderService/VerifyPackages"}
	resp, err := s.unaryInterceptor(context.Background(), req, info, func(ctx context.Context, r any) (any, error) {
		return s.VerifyPackages(ctx, r.(*vouchv1.VerifyPackagesRequest))
	})
	if resp != nil && resp.(*vouchv1.VerifyPackagesResponse) != nil {
		t.Errorf("a response left the server although the ledger write failed: %v", resp)
	}
	if status.Code(err) != codes.Internal || strings.Contains(err.Error(), "disk full") || !strings.Contains(err.Error(), "nothing was issued") {
		t.Errorf("err = %v; want Internal without the internal detail", err)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("%d ledger writes attempted; want 1 (the attestations were signed, then the write failed)", n)
	}
	// Verify-only needs no ledger and still works.
	req.Options.Attest = false
	if r, err := s.VerifyPackages(context.Background(), req); err != nil || r.GetVerdict() != vouchv1.Verdict_VERDICT_VERIFIED {
		t.Errorf("verify-only: %v %v", r.GetVerdict(), err)
	}
}

func TestPanicBecomesInternal(t *testing.T) {
	s := newTestServer(t, func(st store.Store) store.Store { return st })
	info := &grpc.UnaryServerInfo{FullMethod: "/vouch.v1.ReaderService/GetPublicKeys"}
	_, err := s.unaryInterceptor(context.Background(), &vouchv1.GetPublicKeysRequest{}, info, func(context.Context, any) (any, error) {
		panic("assignment to entry in nil map") // the text must not reach the caller
	})
	if status.Code(err) != codes.Internal || strings.Contains(err.Error(), "nil map") {
		t.Errorf("err = %v; want Internal without the panic text", err)
	}
}

func TestToStatus(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want codes.Code
	}{
		{"field", fieldErr("packages[0].name", "", "required"), codes.InvalidArgument},
		{"unauthenticated", ErrUnauthenticated, codes.Unauthenticated},
		{"permission", ErrPermissionDenied, codes.PermissionDenied},
		{"store not found", store.ErrNotFound, codes.NotFound},
		{"canceled", context.Canceled, codes.Canceled},
		{"other", errors.New("boom"), codes.Internal},
	}
	s := newTestServer(t, func(st store.Store) store.Store { return st })
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := status.Code(toStatus(context.Background(), s.log, "/m", tt.err)); got != tt.want {
				t.Errorf("code = %v, want %v", got, tt.want)
			}
		})
	}
}

// blockingLedger holds AppendAttestation until release is closed.
type blockingLedger struct {
	store.Store
	entered chan struct{}
	release chan struct{}
	writes  atomic.Int32
}

func (b *blockingLedger) AppendAttestation(ctx context.Context, a store.Attestation) (string, error) {
	b.writes.Add(1)
	b.entered <- struct{}{}
	<-b.release
	return b.Store.AppendAttestation(ctx, a)
}

// TestOverloadIsResourceExhausted: with every slot busy for QueueTimeout, a
// call fails fast with ResourceExhausted (and a shed metric), not by
// queueing until the caller's deadline.
func TestOverloadIsResourceExhausted(t *testing.T) {
	bl := &blockingLedger{entered: make(chan struct{}, 1), release: make(chan struct{})}
	s := newTestServer(t, func(st store.Store) store.Store { bl.Store = st; return bl })
	s.cfg.Limits.MaxInFlight, s.cfg.Limits.QueueTimeout = 1, 50*time.Millisecond
	s.slots = make(chan struct{}, 1)
	req := &vouchv1.VerifyPackagesRequest{
		Subjects: []*vouchv1.Subject{{Name: "app", Digest: map[string]string{"sha256": strings.Repeat("ab", 32)}}},
		Packages: testClaims(),
		Options:  &vouchv1.VerifyOptions{Attest: true},
	}
	call := func() error {
		info := &grpc.UnaryServerInfo{FullMethod: "/vouch.v1.BuilderService/VerifyPackages"}
		_, err := s.unaryInterceptor(context.Background(), req, info, func(ctx context.Context, r any) (any, error) {
			return s.VerifyPackages(ctx, r.(*vouchv1.VerifyPackagesRequest))
		})
		return err
	}
	first := make(chan error, 1)
	go func() { first <- call() }()
	select {
	case <-bl.entered: // the first call holds the only slot
	case err := <-first:
		t.Fatalf("first call ended before its ledger write: %v", err)
	}
	start := time.Now()
	err := call()
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "retry with backoff") {
		t.Errorf("second call: %v; want ResourceExhausted", err)
	}
	if waited := time.Since(start); waited > 5*time.Second {
		t.Errorf("the refused call waited %v", waited)
	}
	close(bl.release)
	if err := <-first; err != nil {
		t.Errorf("first call: %v", err)
	}
	// The slot is free again.
	if err := call(); err != nil {
		t.Errorf("third call: %v", err)
	}
	if got := testutil.ToFloat64(s.metrics.shed); got != 1 {
		t.Errorf("vouch_verify_shed_total = %v, want 1", got)
	}
	if got := testutil.ToFloat64(s.metrics.inFlight); got != 0 {
		t.Errorf("vouch_verify_in_flight = %v, want 0", got)
	}
}

// cancelingSigner cancels the request's context while making the last
// signature (the second: SPDX, then VSA), as a caller whose deadline passes
// mid-request.
type cancelingSigner struct {
	attest.Signer
	cancel context.CancelFunc
	n      *atomic.Int32
}

func (c cancelingSigner) Sign(ctx context.Context, data []byte) ([]byte, error) {
	if c.n.Add(1) == 2 {
		c.cancel()
	}
	return c.Signer.Sign(ctx, data)
}

// TestGoneCallerGetsNoLedgerEntry: when the caller's context ends before the
// ledger write, nothing is recorded (nobody would hold the attestation).
// Here sigstore-go's bundling notices first; VerifyPackages checks again
// right before the write, for the time spent between the two.
func TestGoneCallerGetsNoLedgerEntry(t *testing.T) {
	var writes atomic.Int32
	s := newTestServer(t, func(st store.Store) store.Store { return countingLedger{st, &writes} })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s.signer = cancelingSigner{Signer: s.signer, cancel: cancel, n: new(atomic.Int32)}
	req := &vouchv1.VerifyPackagesRequest{
		Subjects: []*vouchv1.Subject{{Name: "app", Digest: map[string]string{"sha256": strings.Repeat("ab", 32)}}},
		Packages: testClaims(),
		Options:  &vouchv1.VerifyOptions{Attest: true},
	}
	resp, err := s.VerifyPackages(ctx, req)
	if !errors.Is(err, context.Canceled) || resp != nil {
		t.Errorf("VerifyPackages = %v, %v; want context.Canceled and no response", resp, err)
	}
	if n := writes.Load(); n != 0 {
		t.Errorf("%d ledger writes; want none", n)
	}
}

type countingLedger struct {
	store.Store
	n *atomic.Int32
}

func (c countingLedger) AppendAttestation(ctx context.Context, a store.Attestation) (string, error) {
	c.n.Add(1)
	return c.Store.AppendAttestation(ctx, a)
}

// TestStaleReasonNamesLastConfirmation: the INDEX_STALE reason gives the
// last time a fetch or 304 confirmed the index, not when it was first
// downloaded.
func TestStaleReasonNamesLastConfirmation(t *testing.T) {
	s := newTestServer(t, func(st store.Store) store.Store { return st })
	fetched, confirmed := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 1, 5, 12, 0, 0, 0, time.UTC)
	s.idx = &fakeIndex{lookup: func(_, _, _, _ string) index.Lookup {
		return index.Lookup{Outcome: index.Stale, Snapshot: index.SnapshotInfo{FetchedAt: fetched, ConfirmedAt: confirmed}}
	}}
	resp, err := s.VerifyPackages(context.Background(), &vouchv1.VerifyPackagesRequest{
		Subjects: []*vouchv1.Subject{{Name: "app", Digest: map[string]string{"sha256": strings.Repeat("ab", 32)}}},
		Packages: testClaims(),
	})
	if err != nil {
		t.Fatal(err)
	}
	r := resp.GetResults()[0]
	if r.GetVerdict() != vouchv1.Verdict_VERDICT_INDEX_STALE || !strings.Contains(r.GetReason(), "last confirmed fresh 2026-01-05T12:00:00Z") {
		t.Errorf("result = %v %q; want INDEX_STALE naming 2026-01-05T12:00:00Z", r.GetVerdict(), r.GetReason())
	}
}

package server

import (
	"context"
	"errors"
	"strings"
	"testing"

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

// failingLedger is a store whose ledger writes fail.
type failingLedger struct{ store.Store }

func (failingLedger) AppendAttestation(context.Context, store.Attestation) (string, error) {
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
		return index.Lookup{Outcome: index.Current, Checksum: testSum, Snapshot: index.SnapshotInfo{SHA256: strings.Repeat("1", 64), Keys: []string{"k.rsa.pub"}}}
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
	s := newTestServer(t, func(st store.Store) store.Store { return failingLedger{st} })
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

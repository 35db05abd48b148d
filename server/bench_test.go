package server_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/vouchdev/vouch/internal/testrepo"
	vouchv1 "github.com/vouchdev/vouch/proto/vouch/v1"
	"github.com/vouchdev/vouch/server/servertest"
)

// benchEnv starts a server whose repository holds n packages.
func benchEnv(b *testing.B, n int) (*servertest.Env, []*vouchv1.PackageClaim) {
	b.Helper()
	pkgs := make([]testrepo.Package, n)
	for i := range pkgs {
		pkgs[i] = testrepo.Package{Name: fmt.Sprintf("pkg-%05d", i), Version: "1.0.0-r0", Arch: "x86_64"}
	}
	e := servertest.Start(b, servertest.Options{Packages: pkgs})
	return e, e.Claims()
}

// BenchmarkVerifyPackages measures one VerifyPackages call over a real gRPC
// connection on loopback (client and server in this process).
// Targets (issue figures, measured with ghz at concurrency 50 on 2 cores):
// verify-only 50 packages ≥ 10,000 RPC/s; attesting with the SQLite ledger
// ≥ 1,500 RPC/s.
func BenchmarkVerifyPackages(b *testing.B) {
	for _, n := range []int{50, 1000} {
		e, claims := benchEnv(b, n)
		for _, attestIt := range []bool{false, true} {
			name := fmt.Sprintf("packages=%d/attest=%v", n, attestIt)
			req := &vouchv1.VerifyPackagesRequest{
				Subjects: []*vouchv1.Subject{servertest.Subject("registry.example/bench")},
				Packages: claims,
				Options:  &vouchv1.VerifyOptions{Attest: attestIt},
			}
			b.Run(name, func(b *testing.B) {
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						resp, err := e.Builder.VerifyPackages(context.Background(), req)
						if err != nil || resp.GetVerdict() != vouchv1.Verdict_VERDICT_VERIFIED {
							b.Errorf("VerifyPackages: %v %v", err, resp.GetVerdict())
							return
						}
					}
				})
			})
		}
	}
}

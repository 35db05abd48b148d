package attest

import (
	"context"
	"fmt"
	"testing"

	"github.com/vouchdev/vouch/internal/testtools"
)

// BenchmarkIssue measures Issue (both attestations: SPDX and VSA built,
// validated, written and signed into bundle and envelope) with an ECDSA
// P-256 key.
// Targets: 50 packages ≤ 1 ms/op; 1,000 packages ≤ 15 ms/op.
func BenchmarkIssue(b *testing.B) {
	for _, n := range []int{50, 1000} {
		b.Run(fmt.Sprintf("packages=%d", n), func(b *testing.B) {
			s := newTestSigner(b, KeyECDSAP256)
			in := testInput(n)
			ctx := context.Background()
			b.ReportAllocs()
			defer testtools.ReportCPU(b)()
			for b.Loop() {
				if _, err := Issue(ctx, s, in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkVerifyBundle measures Verify on a bundle of a 50-package subject,
// per key type and predicate: "verify" checks signature, statement, subject
// and predicate type (SkipPredicateDecode); "verify+decode" also decodes the
// typed predicate (for SPDX, tools-golang's model).
// Target: verify ≤ 0.5 ms/op.
func BenchmarkVerifyBundle(b *testing.B) {
	for _, kt := range []KeyType{KeyECDSAP256, KeyEd25519} {
		s := newTestSigner(b, kt)
		atts, err := Issue(context.Background(), s, testInput(50))
		if err != nil {
			b.Fatal(err)
		}
		ks := keySetOf(b, s)
		for _, a := range atts {
			name := map[string]string{PredicateTypeSPDX: "spdx", PredicateTypeVSA: "vsa"}[a.PredicateType]
			for _, decode := range []bool{false, true} {
				mode := "verify"
				if decode {
					mode = "verify+decode"
				}
				want := Expect{SubjectSHA256: testSubjectSHA256, SkipPredicateDecode: !decode}
				b.Run(string(kt)+"/"+name+"/"+mode, func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						if _, err := Verify(a.Bundle, ks, want); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		}
	}
}

// BenchmarkSigstoreGoVerifyBundle is the reference: sigstore-go's verifier on
// the same 50-package SPDX bundle (no target; for comparison only).
func BenchmarkSigstoreGoVerifyBundle(b *testing.B) {
	s := newTestSigner(b, KeyECDSAP256)
	atts, err := Issue(context.Background(), s, testInput(50))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := sigstoreVerify(b, atts[0].Bundle, []Signer{s}, testSubjectSHA256); err != nil {
			b.Fatal(err)
		}
	}
}

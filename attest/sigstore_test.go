package attest

import (
	"crypto"
	"encoding/hex"
	"testing"

	sgbundle "github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/signature"
)

// sigstoreVerify verifies a bundle the way sigstore-go's own verifier does
// for a long-lived key: trusted material from the key, no observer
// timestamps, the subject digest as the artifact, and the key as identity.
func sigstoreVerify(t testing.TB, bundleJSON []byte, signers []Signer, subjectHex string) error {
	t.Helper()
	keys := map[string]*root.ExpiringKey{}
	for _, s := range signers {
		v, err := signature.LoadVerifier(s.Public(), crypto.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		keys[s.KeyID()] = root.NewExpiringKey(v, zeroTime, zeroTime)
	}
	sev, err := verify.NewVerifier(root.NewTrustedPublicKeyMaterialFromMapping(keys), verify.WithNoObserverTimestamps())
	if err != nil {
		t.Fatal(err)
	}
	var b sgbundle.Bundle
	if err := b.UnmarshalJSON(bundleJSON); err != nil {
		return err
	}
	digest, err := hex.DecodeString(subjectHex)
	if err != nil {
		t.Fatal(err)
	}
	_, err = sev.Verify(&b, verify.NewPolicy(verify.WithArtifactDigest("sha256", digest), verify.WithKey()))
	return err
}

// TestSigstoreGoAgrees checks that Verify and sigstore-go's verifier accept
// and refuse the same bundles.
func TestSigstoreGoAgrees(t *testing.T) {
	for _, kt := range []KeyType{KeyECDSAP256, KeyEd25519} {
		good := newTestSigner(t, kt)
		other := newTestSigner(t, KeyECDSAP256)
		a := issued(t, good)
		tests := []struct {
			name    string
			bundle  []byte
			signers []Signer
			subject string
			wantOK  bool
		}{
			{name: "ok", bundle: a.Bundle, signers: []Signer{good}, subject: testSubjectSHA256, wantOK: true},
			{name: "ok among several keys", bundle: a.Bundle, signers: []Signer{other, good}, subject: testSubjectSHA256, wantOK: true},
			{name: "wrong key", bundle: a.Bundle, signers: []Signer{other}, subject: testSubjectSHA256},
			{name: "wrong subject", bundle: a.Bundle, signers: []Signer{good}, subject: hexOf("other")},
			{name: "tampered", bundle: tamperPayload(t, a.Bundle), signers: []Signer{good}, subject: testSubjectSHA256},
		}
		for _, tt := range tests {
			t.Run(string(kt)+"/"+tt.name, func(t *testing.T) {
				sgErr := sigstoreVerify(t, tt.bundle, tt.signers, tt.subject)
				_, ourErr := Verify(tt.bundle, keySetOf(t, tt.signers...), Expect{SubjectSHA256: tt.subject})
				if (sgErr == nil) != tt.wantOK || (ourErr == nil) != tt.wantOK {
					t.Errorf("sigstore-go: %v; Verify: %v; want ok=%v from both", sgErr, ourErr, tt.wantOK)
				}
			})
		}
	}
}

package attest

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vouchdev/vouch/internal/testtools"
)

// TestCosign checks that the real cosign CLI verifies what Issue produces —
// bundles and legacy DSSE envelopes, SPDX and VSA, ECDSA P-256 and Ed25519
// keys — offline, with the public key and no transparency log, and that it
// refuses a wrong key, a wrong digest, a tampered payload and a wrong --type. It skips when
// cosign is not installed (scripts/tools.sh cosign) and fails under CI=true.
// Cases run one after another: cosign is a large binary and CI has 2 cores.
func TestCosign(t *testing.T) {
	cosign := testtools.Require(t, "cosign")
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	const wrongDigest = "0000000000000000000000000000000000000000000000000000000000000000"

	signers := map[KeyType]Signer{
		KeyECDSAP256: newTestSigner(t, KeyECDSAP256),
		KeyEd25519:   newTestSigner(t, KeyEd25519),
	}
	pubs := map[KeyType]string{}
	for kt, s := range signers {
		p, _, err := PublicKeyPEM(s)
		if err != nil {
			t.Fatal(err)
		}
		pubs[kt] = write(string(kt)+".pub", p)
	}
	otherKey := map[KeyType]KeyType{KeyECDSAP256: KeyEd25519, KeyEd25519: KeyECDSAP256}

	for _, kt := range []KeyType{KeyECDSAP256, KeyEd25519} {
		atts, err := Issue(context.Background(), signers[kt], testInput(5))
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range atts {
			short := map[string]string{PredicateTypeSPDX: "spdx", PredicateTypeVSA: "vsa"}[a.PredicateType]
			typeFlag := map[string]string{PredicateTypeSPDX: "spdxjson", PredicateTypeVSA: PredicateTypeVSA}[a.PredicateType]
			prefix := string(kt) + "." + short
			bundle := write(prefix+".sigstore.json", a.Bundle)
			env := write(prefix+".dsse.json", a.Envelope)
			tamperedBundle := write(prefix+".tampered.sigstore.json", tamperPayload(t, a.Bundle))
			tamperedEnv := write(prefix+".tampered.dsse.json", tamperPayload(t, a.Envelope))

			wrongType := map[string]string{PredicateTypeSPDX: PredicateTypeVSA, PredicateTypeVSA: "spdxjson"}[a.PredicateType]
			tests := []struct {
				name       string
				material   []string // --bundle F or --signature F
				key        string
				digest     string
				typ        string // --type; default the attestation's own
				wantErr    bool
				wantStderr string
			}{
				{name: "bundle", material: []string{"--bundle", bundle}, key: pubs[kt], digest: testSubjectSHA256},
				{name: "envelope", material: []string{"--signature", env}, key: pubs[kt], digest: testSubjectSHA256},
				{name: "bundle wrong key", material: []string{"--bundle", bundle}, key: pubs[otherKey[kt]], digest: testSubjectSHA256, wantErr: true, wantStderr: "accepted signatures do not match threshold"},
				{name: "envelope wrong key", material: []string{"--signature", env}, key: pubs[otherKey[kt]], digest: testSubjectSHA256, wantErr: true, wantStderr: "accepted signatures do not match threshold"},
				{name: "bundle wrong digest", material: []string{"--bundle", bundle}, key: pubs[kt], digest: wrongDigest, wantErr: true, wantStderr: "digest does not match"},
				{name: "envelope wrong digest", material: []string{"--signature", env}, key: pubs[kt], digest: wrongDigest, wantErr: true, wantStderr: "no matching subject digest"},
				{name: "bundle tampered", material: []string{"--bundle", tamperedBundle}, key: pubs[kt], digest: testSubjectSHA256, wantErr: true, wantStderr: "accepted signatures do not match threshold"},
				{name: "envelope tampered", material: []string{"--signature", tamperedEnv}, key: pubs[kt], digest: testSubjectSHA256, wantErr: true, wantStderr: "accepted signatures do not match threshold"},
				{name: "bundle wrong type", material: []string{"--bundle", bundle}, key: pubs[kt], digest: testSubjectSHA256, typ: wrongType, wantErr: true, wantStderr: "invalid predicate type"},
				{name: "envelope wrong type", material: []string{"--signature", env}, key: pubs[kt], digest: testSubjectSHA256, typ: wrongType, wantErr: true, wantStderr: "invalid predicate type"},
			}
			for _, tt := range tests {
				t.Run(prefix+"/"+tt.name, func(t *testing.T) {
					typ := typeFlag
					if tt.typ != "" {
						typ = tt.typ
					}
					args := append([]string{"verify-blob-attestation"}, tt.material...)
					args = append(args, "--key", tt.key, "--type", typ, "--insecure-ignore-tlog",
						"--digest", tt.digest, "--digestAlg", "sha256")
					ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
					defer cancel()
					cmd := exec.CommandContext(ctx, cosign, args...)
					cmd.Dir = dir
					cmd.Env = append(os.Environ(), "HOME="+dir) // keep cosign's caches out of the real home
					var stderr bytes.Buffer
					cmd.Stderr = &stderr
					err := cmd.Run()
					if tt.wantErr {
						if err == nil {
							t.Fatalf("cosign %s accepted it; want a refusal", strings.Join(args, " "))
						}
						if !strings.Contains(stderr.String(), tt.wantStderr) {
							t.Errorf("cosign refused for another reason: %s; want %q", stderr.String(), tt.wantStderr)
						}
						return
					}
					if err != nil {
						t.Fatalf("cosign %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
					}
					if !strings.Contains(stderr.String(), "Verified OK") {
						t.Errorf("cosign did not say Verified OK: %s", stderr.String())
					}
				})
			}
		}
	}
}

// TestCosignMadeBundle checks interoperability the other way: a bundle that
// cosign itself signs (with its own key, offline) over a vouch statement
// passes Verify, and its hint is vouch's key id for cosign's public key.
func TestCosignMadeBundle(t *testing.T) {
	cosign := testtools.Require(t, "cosign")
	dir := t.TempDir()
	run := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, cosign, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "HOME="+dir, "COSIGN_PASSWORD=")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("cosign %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	run("generate-key-pair")
	atts, err := Issue(context.Background(), newTestSigner(t, KeyECDSAP256), testInput(4))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "stmt.json"), atts[0].Statement, 0o644); err != nil {
		t.Fatal(err)
	}
	run("attest-blob", "--key", "cosign.key", "--statement", "stmt.json", "--bundle", "made.sigstore.json",
		"--use-signing-config=false", "--tlog-upload=false", "--yes")

	pub, err := os.ReadFile(filepath.Join(dir, "cosign.pub"))
	if err != nil {
		t.Fatal(err)
	}
	bundle, err := os.ReadFile(filepath.Join(dir, "made.sigstore.json"))
	if err != nil {
		t.Fatal(err)
	}
	ks, err := NewKeySetPEM(pub)
	if err != nil {
		t.Fatal(err)
	}
	v, err := Verify(bundle, ks, Expect{SubjectSHA256: testSubjectSHA256, PredicateType: PredicateTypeSPDX})
	if err != nil {
		t.Fatalf("Verify(cosign-made bundle): %v", err)
	}
	if v.KeyID != ks.IDs()[0] || !bytes.Equal(v.Statement.Predicate, predicateOf(t, atts[0].Statement)) {
		t.Errorf("cosign-made bundle: key %q (want %q), predicate kept: %v", v.KeyID, ks.IDs()[0], bytes.Equal(v.Statement.Predicate, predicateOf(t, atts[0].Statement)))
	}
}

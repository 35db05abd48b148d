package server_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vouchdev/vouch/attest"
	"github.com/vouchdev/vouch/internal/testtools"
	vouchv1 "github.com/vouchdev/vouch/proto/vouch/v1"
	"github.com/vouchdev/vouch/server/servertest"
)

// TestCosignVerifiesServerAttestations: real cosign accepts what the
// server issues, for both predicate types, as bundle and as envelope.
func TestCosignVerifiesServerAttestations(t *testing.T) {
	cosign := testtools.Require(t, "cosign")
	e := servertest.Start(t, servertest.Options{})
	subject := servertest.Subject("registry.test/app")
	resp, err := e.Builder.VerifyPackages(context.Background(), &vouchv1.VerifyPackagesRequest{
		Subjects: []*vouchv1.Subject{subject}, Packages: e.Claims(), Options: &vouchv1.VerifyOptions{Attest: true},
	})
	if err != nil || resp.GetLedgerId() == "" {
		t.Fatalf("VerifyPackages: %v %v", err, resp.GetResults())
	}
	hexd := subject.GetDigest()["sha256"]
	for _, a := range resp.GetAttestations() {
		typ := "spdxjson"
		if a.GetPredicateType() == attest.PredicateTypeVSA {
			typ = attest.PredicateTypeVSA
		}
		bundle := filepath.Join(t.TempDir(), "att.sigstore.json")
		if err := os.WriteFile(bundle, a.GetBundle(), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(cosign, "verify-blob-attestation", "--bundle", bundle, "--key", e.PublicKeyPath,
			"--type", typ, "--insecure-ignore-tlog", "--digest", hexd, "--digestAlg", "sha256").CombinedOutput()
		if err != nil {
			t.Errorf("cosign verify-blob-attestation (%s): %v\n%s", typ, err, out)
		}
		// A different subject digest is refused.
		out, err = exec.Command(cosign, "verify-blob-attestation", "--bundle", bundle, "--key", e.PublicKeyPath,
			"--type", typ, "--insecure-ignore-tlog", "--digest", strings.Repeat("0", 64), "--digestAlg", "sha256").CombinedOutput()
		if err == nil {
			t.Errorf("cosign accepted a wrong digest (%s):\n%s", typ, out)
		}
	}
}

// TestGrpcurl lists the services through reflection and calls
// VerifyPackages with a JSON request, as an operator would.
func TestGrpcurl(t *testing.T) {
	grpcurl := testtools.Require(t, "grpcurl")
	e := servertest.Start(t, servertest.Options{})
	out, err := exec.Command(grpcurl, "-plaintext", e.Addr, "list").CombinedOutput()
	if err != nil {
		t.Fatalf("grpcurl list: %v\n%s", err, out)
	}
	for _, svc := range []string{"vouch.v1.BuilderService", "vouch.v1.ReaderService", "vouch.v1.AdminService", "grpc.health.v1.Health"} {
		if !strings.Contains(string(out), svc) {
			t.Errorf("grpcurl list lacks %s:\n%s", svc, out)
		}
	}
	c := e.Claim("hello")
	req, _ := json.Marshal(map[string]any{
		"subjects": []any{map[string]any{"name": "app", "digest": map[string]string{"sha256": strings.Repeat("ab", 32)}}},
		"packages": []any{map[string]string{"name": c.Name, "version": c.Version, "arch": c.Arch, "repository": c.Repository, "checksum": c.Checksum}},
		"options":  map[string]bool{"attest": true},
	})
	out, err = exec.Command(grpcurl, "-plaintext", "-d", string(req), e.Addr, "vouch.v1.BuilderService/VerifyPackages").CombinedOutput()
	if err != nil {
		t.Fatalf("grpcurl VerifyPackages: %v\n%s", err, out)
	}
	var resp struct {
		Verdict      string            `json:"verdict"`
		LedgerID     string            `json:"ledgerId"`
		Attestations []json.RawMessage `json:"attestations"`
	}
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatalf("grpcurl output is not JSON: %v\n%s", err, out)
	}
	if resp.Verdict != "VERDICT_VERIFIED" || resp.LedgerID == "" || len(resp.Attestations) != 2 {
		t.Errorf("grpcurl response: verdict %s, ledger %q, %d attestations", resp.Verdict, resp.LedgerID, len(resp.Attestations))
	}
	// A malformed request names the field.
	out, err = exec.Command(grpcurl, "-plaintext", "-d", `{"packages":[{"name":"x"}]}`, e.Addr, "vouch.v1.BuilderService/VerifyPackages").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "InvalidArgument") || !strings.Contains(string(out), "packages[0].version") {
		t.Errorf("grpcurl with a malformed request: %v\n%s", err, out)
	}
	out, err = exec.Command(grpcurl, "-plaintext", e.Addr, "grpc.health.v1.Health/Check").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "SERVING") {
		t.Errorf("health check: %v\n%s", err, out)
	}
}

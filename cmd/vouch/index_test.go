package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vouchdev/vouch/internal/testrepo"
)

var realFixtures = filepath.Join("..", "..", "testdata", "real")

func fixture(rel string) string { return filepath.Join(realFixtures, filepath.FromSlash(rel)) }

func TestIndexVerifyCmd(t *testing.T) {
	keys := fixture("keys")
	wrongKeyDir := t.TempDir()
	b, err := os.ReadFile(fixture("keys/alpine-devel@lists.alpinelinux.org-4a6a0840.rsa.pub"))
	if err != nil {
		t.Fatal(err)
	}
	// The wrong key under the right name: the signature must fail.
	if err := os.WriteFile(filepath.Join(wrongKeyDir, "alpine-devel@lists.alpinelinux.org-6165ee59.rsa.pub"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	alpine := fixture("alpine/v3.16-main-x86_64.APKINDEX.tar.gz")
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantOut    string
		wantStderr string
	}{
		{name: "verifies", args: []string{"--keys", keys, alpine}, wantOut: "OK " + alpine + ": signed by alpine-devel@lists.alpinelinux.org-6165ee59.rsa.pub (RSA), 4929 entries"},
		{name: "multisig RSA256", args: []string{"--keys", keys, fixture("chainguard-multisig/APKINDEX.tar.gz")}, wantOut: "(RSA256), 16 entries"},
		{name: "untrusted", args: []string{"--keys", fixture("keys/melange.rsa.pub"), alpine}, wantCode: 1, wantStderr: "no signature by a trusted key"},
		{name: "wrong key under the right name", args: []string{"--keys", wrongKeyDir, alpine}, wantCode: 1, wantStderr: "bad signature"},
		{name: "not an index", args: []string{"--keys", keys, fixture("lock/wolfi-real.apko.lock.json")}, wantCode: 1, wantStderr: "malformed APKINDEX"},
		{name: "missing file", args: []string{"--keys", keys, "does-not-exist"}, wantCode: 1, wantStderr: "does-not-exist"},
		{name: "no keys flag", args: []string{alpine}, wantCode: 2, wantStderr: "--keys DIR is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(append([]string{"index", "verify"}, tt.args...), &stdout, &stderr)
			if code != tt.wantCode {
				t.Fatalf("exit code %d, want %d (stderr %q)", code, tt.wantCode, stderr.String())
			}
			if !strings.Contains(stdout.String(), tt.wantOut) {
				t.Errorf("stdout %q does not contain %q", stdout.String(), tt.wantOut)
			}
			if !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("stderr %q does not contain %q", stderr.String(), tt.wantStderr)
			}
			if tt.wantCode != 0 && strings.Count(strings.TrimSpace(stderr.String()), "\n") != 0 {
				t.Errorf("reason is not one line: %q", stderr.String())
			}
		})
	}
}

func TestIndexVerifyCmdJSON(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run([]string{"index", "verify", "--json", "--keys", fixture("keys"), fixture("pmos/x86_64/APKINDEX.tar.gz")}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit code %d: %s", code, stderr.String())
	}
	var rep indexReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if !rep.Verified || rep.EntryCount != 139 || rep.Algorithm != "RSA" || len(rep.Keys) != 1 || rep.Keys[0] != "pmos-59ff5cfb.rsa.pub" || len(rep.SHA256) != 64 {
		t.Errorf("report = %+v", rep)
	}
	// A failure is one JSON document too, with the reason and exit code 1.
	stdout.Reset()
	code = run([]string{"index", "verify", "--json", "--keys", fixture("keys/melange.rsa.pub"), fixture("pmos/x86_64/APKINDEX.tar.gz")}, &stdout, &stderr)
	if code != 1 {
		t.Fatalf("exit code %d, want 1", code)
	}
	var fail map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &fail); err != nil {
		t.Fatal(err)
	}
	if fail["verified"] != false || !strings.Contains(fail["error"].(string), "trusted key") {
		t.Errorf("failure report = %v", fail)
	}
}

func TestIndexListCmd(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run([]string{"index", "list", fixture("rsa256/APKINDEX.tar.gz")}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit code %d: %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "alpine-baselayout") || !strings.Contains(stdout.String(), "Q1LLq2qDNrS/qRnhxQ3hsY/sHbQnc=") {
		t.Errorf("stdout = %q", stdout.String())
	}
	if !strings.Contains(stderr.String(), "not verified") {
		t.Errorf("stderr = %q, want a not-verified note", stderr.String())
	}
	stdout.Reset()
	code = run([]string{"index", "list", "--json", "--keys", fixture("keys"), fixture("wolfi/wolfi-2022-subset.x86_64.APKINDEX.tar.gz")}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit code %d: %s", code, stderr.String())
	}
	var rep indexReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if !rep.Verified || len(rep.Entries) != 47 || rep.EntryCount != 47 {
		t.Errorf("verified=%v entries=%d", rep.Verified, len(rep.Entries))
	}
	for _, e := range rep.Entries {
		if e.Name == "" || e.Version == "" || e.Arch != "x86_64" || len(e.Checksum) != 30 {
			t.Fatalf("entry %+v", e)
		}
	}
}

func TestIndexVerifyCmdGeneratedDefects(t *testing.T) {
	key := testrepo.MustKey(t, "test.rsa.pub")
	dir := t.TempDir()
	if err := testrepo.WriteKeys(filepath.Join(dir, "keys"), key); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		defect     testrepo.IndexDefect
		wantCode   int
		wantStderr string
	}{
		{name: "good", defect: testrepo.IdxOK},
		{name: "unsigned", defect: testrepo.IdxUnsigned, wantCode: 1, wantStderr: "no signature"},
		{name: "DSA", defect: testrepo.IdxDSA, wantCode: 1, wantStderr: "unknown signature algorithm"},
		{name: "extra member", defect: testrepo.IdxExtraMember, wantCode: 1, wantStderr: "unexpected tar member"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := testrepo.Index{Entries: testrepo.GenerateEntries(10, "x86_64", 1), Signers: []testrepo.Signer{{Key: key}}, Defect: tt.defect}.Build()
			if err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(dir, "APKINDEX.tar.gz")
			if err := os.WriteFile(file, data, 0o644); err != nil {
				t.Fatal(err)
			}
			var stdout, stderr bytes.Buffer
			code := run([]string{"index", "verify", "--keys", filepath.Join(dir, "keys"), file}, &stdout, &stderr)
			if code != tt.wantCode || !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("exit %d stderr %q, want %d %q", code, stderr.String(), tt.wantCode, tt.wantStderr)
			}
		})
	}
}

package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vouchdev/vouch/attest"
	"github.com/vouchdev/vouch/internal/testrepo"
)

func TestBadConfig(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "signing.key")
	if err := os.WriteFile(key, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	// Five distinct mistakes in one file; each must be reported with the
	// file, the line, the field and the problem.
	yaml := `listen: 0.0.0.0:7443
store: mysql://db/vouch
signing_key: ` + key + `
repositories:
  - name: Wolfi!
    url: ftp://packages.example/os
    keys: []
    architectures: [x86_64]
    refresh: 10m
    max_age: 1m
`
	if err := os.WriteFile(bad, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"--config", bad}, &stdout, &stderr)
	if code != exitConfig {
		t.Errorf("exit code = %d, want %d", code, exitConfig)
	}
	for _, want := range []string{
		bad + ":1: listen: \"0.0.0.0:7443\" is not a loopback address: configure tls",
		bad + ":2: store: \"mysql://db/vouch\": unknown scheme",
		bad + ":5: repositories[0].name: \"Wolfi!\": want lower-case letters",
		bad + ":6: repositories[0].url: \"ftp://packages.example/os\": want an https, http or file URL",
		bad + ":7: repositories[0].keys: required",
		bad + ":10: repositories[0].max_age: 1m0s is shorter than refresh",
	} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q\nstderr:\n%s", want, stderr.String())
		}
	}
}

func TestMissingConfigFlag(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), nil, &stdout, &stderr); code != exitConfig {
		t.Errorf("exit code = %d, want %d", code, exitConfig)
	}
	if !strings.Contains(stderr.String(), `required flag(s) "config" not set`) {
		t.Errorf("stderr = %q", stderr.String())
	}
}

// TestCheck: --check loads what Start would load without opening the store
// or the network, so a key with the wrong mode, a bad tokens file or a
// repository key that is not RSA fails the check, not the start.
func TestCheck(t *testing.T) {
	dir := t.TempDir()
	if _, err := attest.WriteKeyFiles(dir, attest.KeyECDSAP256); err != nil {
		t.Fatal(err)
	}
	repoKey, err := testrepo.NewKey("repo.rsa.pub", 2048)
	if err != nil {
		t.Fatal(err)
	}
	if err := testrepo.WriteKeys(filepath.Join(dir, "keys"), repoKey); err != nil {
		t.Fatal(err)
	}
	signingKey := filepath.Join(dir, attest.PrivateKeyFile)
	pubKey := filepath.Join(dir, attest.PublicKeyFile) // an ECDSA key: not a repository key
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	goodTokens := write("tokens.yaml", "tokens:\n  - identity: ci\n    sha256: "+strings.Repeat("ab", 32)+"\n    roles: [builder]\n", 0o600)
	badTokens := write("bad-tokens.yaml", "tokens:\n  - identity: ci\n    sha256: nothex\n    roles: [builder]\n", 0o600)
	looseKey := write("loose.key", string(must(os.ReadFile(signingKey))), 0o644)
	config := func(signing, tokens, key, mirror string) string {
		return `listen: 127.0.0.1:0
store: sqlite://` + dir + `/never-created.db
signing_key: ` + signing + `
auth: {tokens_file: ` + tokens + `}
repositories:
  - name: wolfi
    url: https://packages.example/os
    mirrors: [` + mirror + `]
    keys: [` + key + `]
    architectures: [x86_64]
`
	}
	repoKeyPath := filepath.Join(dir, "keys", "repo.rsa.pub")
	tests := []struct {
		name       string
		yaml       string
		wantCode   int
		wantStderr string
	}{
		{"good", config(signingKey, goodTokens, repoKeyPath, "https://mirror.example/os"), exitOK, ""},
		{"signing key readable by others", config(looseKey, goodTokens, repoKeyPath, "https://mirror.example/os"), exitConfig, "signing_key " + looseKey},
		{"tokens file", config(signingKey, badTokens, repoKeyPath, "https://mirror.example/os"), exitConfig, "auth.tokens_file"},
		{"repository key not RSA", config(signingKey, goodTokens, pubKey, "https://mirror.example/os"), exitConfig, "repositories[0].keys"},
		{"mirror is the canonical URL", config(signingKey, goodTokens, repoKeyPath, "https://packages.example/os/"), exitConfig, "is also used by"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := write("vouch.yaml", tt.yaml, 0o600)
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), []string{"--config", cfg, "--check"}, &stdout, &stderr)
			if code != tt.wantCode {
				t.Errorf("exit code = %d, want %d\nstdout: %s\nstderr: %s", code, tt.wantCode, stdout.String(), stderr.String())
			}
			if tt.wantStderr != "" && !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("stderr lacks %q:\n%s", tt.wantStderr, stderr.String())
			}
			if tt.wantCode == exitOK && !strings.Contains(stdout.String(), "configuration OK") {
				t.Errorf("stdout = %q", stdout.String())
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "never-created.db")); !os.IsNotExist(err) {
		t.Errorf("--check touched the store: %v", err)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

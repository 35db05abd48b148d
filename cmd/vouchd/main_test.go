package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
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

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vouchdev/vouch/attest"
)

func TestKeysGenerate(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{name: "default ecdsa", args: nil},
		{name: "ecdsa-p256", args: []string{"--type", "ecdsa-p256"}},
		{name: "ed25519", args: []string{"--type", "ed25519"}},
		{name: "p384 refused", args: []string{"--type", "ecdsa-p384"}, wantCode: 1, wantErr: "unsupported signing key type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "keys")
			var stdout, stderr bytes.Buffer
			code := run(append([]string{"keys", "generate", "--out", dir}, tt.args...), &stdout, &stderr)
			if code != tt.wantCode {
				t.Fatalf("exit code %d; want %d (stderr %q)", code, tt.wantCode, stderr.String())
			}
			if tt.wantErr != "" {
				if !strings.Contains(stderr.String(), tt.wantErr) {
					t.Errorf("stderr %q does not contain %q", stderr.String(), tt.wantErr)
				}
				return
			}
			fi, err := os.Stat(filepath.Join(dir, "vouch.key"))
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("vouch.key mode %04o; want 0600", fi.Mode().Perm())
			}
			s, err := attest.LoadSigner(filepath.Join(dir, "vouch.key"))
			if err != nil {
				t.Fatal(err)
			}
			pub, err := os.ReadFile(filepath.Join(dir, "vouch.pub"))
			if err != nil {
				t.Fatal(err)
			}
			wantPub, _, err := attest.PublicKeyPEM(s)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(pub, wantPub) {
				t.Errorf("vouch.pub does not match vouch.key")
			}
			if !strings.Contains(stdout.String(), "key id:      "+s.KeyID()+"\n") {
				t.Errorf("stdout %q does not print key id %s", stdout.String(), s.KeyID())
			}
			// A second run never overwrites.
			if code := run([]string{"keys", "generate", "--out", dir}, &stdout, &stderr); code == 0 {
				t.Errorf("second generate into the same folder succeeded")
			}
		})
	}
}

func TestKeysGenerateNeedsOut(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"keys", "generate"}, &stdout, &stderr); code == 0 || !strings.Contains(stderr.String(), "--out is required") {
		t.Errorf("code %d, stderr %q; want a failure naming --out", code, stderr.String())
	}
}

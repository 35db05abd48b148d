package attest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func writeFile(t *testing.T, name string, data []byte, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func pkcs8PEM(t *testing.T, key any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func TestLoadSigner(t *testing.T) {
	p256, _, _, err := GenerateKey(KeyECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	ed, _, _, err := GenerateKey(KeyEd25519)
	if err != nil {
		t.Fatal(err)
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sec1, _ := x509.MarshalECPrivateKey(ecKey)

	tests := []struct {
		name    string
		data    []byte
		mode    os.FileMode
		wantErr error
	}{
		{name: "ecdsa p256 pkcs8", data: p256, mode: 0o600},
		{name: "ecdsa p256 sec1", data: pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}), mode: 0o600},
		{name: "ed25519", data: ed, mode: 0o600},
		{name: "read-only owner", data: ed, mode: 0o400},
		{name: "group readable", data: p256, mode: 0o640, wantErr: ErrKeyPermissions},
		{name: "world readable", data: p256, mode: 0o604, wantErr: ErrKeyPermissions},
		{name: "p384 refused", data: pkcs8PEM(t, p384), mode: 0o600, wantErr: ErrUnsupportedKey},
		{name: "rsa refused", data: pkcs8PEM(t, rsaKey), mode: 0o600, wantErr: ErrUnsupportedKey},
		{name: "encrypted cosign key", data: pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED SIGSTORE PRIVATE KEY", Bytes: []byte("x")}), mode: 0o600, wantErr: ErrKeyFormat},
		{name: "public key instead", data: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte("x")}), mode: 0o600, wantErr: ErrKeyFormat},
		{name: "not PEM", data: []byte("hello"), mode: 0o600, wantErr: ErrKeyFormat},
		{name: "garbage DER", data: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("x")}), mode: 0o600, wantErr: ErrKeyFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := LoadSigner(writeFile(t, "key.pem", tt.data, tt.mode))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("LoadSigner err = %v; want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			id, err := KeyID(s.Public())
			if err != nil || id != s.KeyID() {
				t.Errorf("KeyID() = %q; KeyID(Public()) = %q, %v", s.KeyID(), id, err)
			}
		})
	}
	if _, err := LoadSigner(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: err = %v; want fs.ErrNotExist", err)
	}
}

func TestWriteKeyFiles(t *testing.T) {
	for _, kt := range []KeyType{"", KeyECDSAP256, KeyEd25519} {
		t.Run(string(kt), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "keys")
			id, err := WriteKeyFiles(dir, kt)
			if err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(filepath.Join(dir, PrivateKeyFile))
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode().Perm(); got != 0o600 {
				t.Errorf("private key mode = %04o; want 0600", got)
			}
			s, err := LoadSigner(filepath.Join(dir, PrivateKeyFile))
			if err != nil {
				t.Fatal(err)
			}
			pubPEM, err := os.ReadFile(filepath.Join(dir, PublicKeyFile))
			if err != nil {
				t.Fatal(err)
			}
			ks, err := NewKeySetPEM(pubPEM)
			if err != nil {
				t.Fatal(err)
			}
			if got := ks.IDs(); len(got) != 1 || got[0] != id || s.KeyID() != id {
				t.Errorf("key ids: printed %q, public %q, private %q", id, got, s.KeyID())
			}
			gotPEM, gotID, err := PublicKeyPEM(s)
			if err != nil || string(gotPEM) != string(pubPEM) || gotID != id {
				t.Errorf("PublicKeyPEM = %q, %q, %v; want the written file and %q", gotPEM, gotID, err, id)
			}
			if _, err := WriteKeyFiles(dir, kt); !errors.Is(err, fs.ErrExist) {
				t.Errorf("second WriteKeyFiles err = %v; want fs.ErrExist", err)
			}
		})
	}
	if _, err := WriteKeyFiles(t.TempDir(), "ecdsa-p384"); !errors.Is(err, ErrUnsupportedKey) {
		t.Errorf("p384: err = %v; want ErrUnsupportedKey", err)
	}
}

func TestPolicyDigest(t *testing.T) {
	type repo struct {
		Name string
		Keys []string
	}
	cfg := struct {
		Repos []repo
		Extra map[string]string
	}{Repos: []repo{{"wolfi", []string{"k1"}}}, Extra: map[string]string{"b": "2", "a": "1"}}
	d1, err := PolicyDigest(cfg)
	if err != nil {
		t.Fatal(err)
	}
	d2, _ := PolicyDigest(cfg)
	if d1 != d2 || !isHexSHA256(d1) {
		t.Errorf("PolicyDigest not stable: %s %s", d1, d2)
	}
	cfg.Repos[0].Keys[0] = "k2"
	if d3, _ := PolicyDigest(cfg); d3 == d1 {
		t.Errorf("a key change did not change the digest")
	}
	if _, err := PolicyDigest(func() {}); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("unencodable policy: err = %v; want ErrInvalidInput", err)
	}
	if got, want := PolicyDigestBytes([]byte("policy")), hexOf("policy"); got != want {
		t.Errorf("PolicyDigestBytes = %s; want %s", got, want)
	}
}

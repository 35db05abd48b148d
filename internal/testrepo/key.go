// Package testrepo builds signed APK repositories and packages — well formed or with deliberate defects — for tests, benchmarks, hostile mirrors and demos.
//
// Everything is generated in memory from fresh RSA keys:
//
//	key := testrepo.MustKey(t, "test.rsa.pub")           // cached 2048-bit key
//	pkg, _ := testrepo.Package{Name: "hello", Version: "1.0-r0", Arch: "x86_64"}.Build()
//	idx, _ := testrepo.Index{Entries: []apk.Entry{pkg.Entry}, Signers: []testrepo.Signer{{Key: key}}}.Build()
//	_ = testrepo.WriteRepo(dir, "x86_64", idx, pkg)     // dir/x86_64/APKINDEX.tar.gz + .apk
//	keys := key.Keyring()                                 // trust exactly this key
//
// Defects are chosen with Package.Defect and Index.Defect; each yields the
// bytes a hostile or broken mirror would serve.
package testrepo

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/vouchdev/vouch/apk"
)

// Key is an RSA signing key and the file name it is known by (the
// <keyname> of ".SIGN.<ALG>.<keyname>", e.g. "test.rsa.pub").
type Key struct {
	Name    string
	Private *rsa.PrivateKey
}

// NewKey generates a fresh RSA key of the given size (2048 or more; 2048
// takes tens of milliseconds to a second, 4096 several seconds).
func NewKey(name string, bits int) (*Key, error) {
	if bits < 2048 {
		return nil, fmt.Errorf("testrepo: %d-bit keys are refused by apk.Keyring; use 2048 or more", bits)
	}
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		return nil, err
	}
	return &Key{Name: name, Private: k}, nil
}

// keyCache holds generated keys per process, keyed by name and size, so
// tests in one package share the cost of generating them.
var keyCache sync.Map // keyCacheKey -> *keyOnce

type keyCacheKey struct {
	name string
	bits int
}

type keyOnce struct {
	once sync.Once
	key  *Key
	err  error
}

// CachedKey returns the process-wide key for (name, bits), generating it
// on first use. Concurrent callers share one generation.
func CachedKey(name string, bits int) (*Key, error) {
	v, _ := keyCache.LoadOrStore(keyCacheKey{name, bits}, &keyOnce{})
	ko := v.(*keyOnce)
	ko.once.Do(func() { ko.key, ko.err = NewKey(name, bits) })
	return ko.key, ko.err
}

// MustKey returns CachedKey(name, 2048) or fails the test.
func MustKey(tb testing.TB, name string) *Key {
	tb.Helper()
	k, err := CachedKey(name, 2048)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// PublicPEM returns the public key as PEM "PUBLIC KEY" (PKIX), the form
// abuild and melange write to /etc/apk/keys.
func (k *Key) PublicPEM() []byte {
	der, err := x509.MarshalPKIXPublicKey(&k.Private.PublicKey)
	if err != nil {
		panic(err) // cannot happen for an RSA key
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// PrivatePEM returns the private key as PEM "PRIVATE KEY" (PKCS#8).
func (k *Key) PrivatePEM() []byte {
	der, err := x509.MarshalPKCS8PrivateKey(k.Private)
	if err != nil {
		panic(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// Keyring returns an apk.Keyring trusting exactly these keys.
func Keyring(keys ...*Key) *apk.Keyring {
	kr := apk.NewKeyring()
	for _, k := range keys {
		if err := kr.AddKey(k.Name, &k.Private.PublicKey); err != nil {
			panic(err)
		}
	}
	return kr
}

// Keyring returns an apk.Keyring trusting exactly k.
func (k *Key) Keyring() *apk.Keyring { return Keyring(k) }

// WriteKeys writes each key's public PEM to dir/<name>, the layout of
// /etc/apk/keys, creating dir if needed.
func WriteKeys(dir string, keys ...*Key) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, k := range keys {
		if err := os.WriteFile(filepath.Join(dir, k.Name), k.PublicPEM(), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// sign signs msg with alg (PKCS#1 v1.5). DSA is not signable here; callers
// that want a DSA entry write junk bytes under that name.
func (k *Key) sign(alg apk.SignatureAlgorithm, msg []byte) ([]byte, error) {
	h := alg.Hash()
	if h == 0 {
		return nil, fmt.Errorf("testrepo: cannot sign with %v", alg)
	}
	d := h.New()
	d.Write(msg)
	return rsa.SignPKCS1v15(nil, k.Private, h, d.Sum(nil))
}

package apk

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
)

// Errors returned while building a Keyring.
var (
	// ErrKeyFormat reports a key file that is not a PEM RSA public key
	// (PKIX "PUBLIC KEY" or PKCS#1 "RSA PUBLIC KEY").
	ErrKeyFormat = errors.New("not a PEM RSA public key")
	// ErrKeyName reports an empty or path-like key name, or a duplicate one.
	ErrKeyName = errors.New("invalid key name")
)

// maxKeyFileSize bounds a key file; a 16384-bit PEM key is under 3 KiB.
const maxKeyFileSize = 64 << 10

// minKeyBits is the smallest RSA modulus accepted. Real Alpine and pmOS keys
// are 2048-bit (APK-FORMAT §8.2).
const minKeyBits = 2048

// Keyring is a set of trusted RSA public keys named by file name, as in
// /etc/apk/keys. Under apk v2 the <keyname> of a ".SIGN.<ALG>.<keyname>"
// entry must equal a key's name exactly (APK-FORMAT §1.2, §8.4); no
// suffix stripping or path lookup is done.
//
// Build a Keyring with NewKeyring, Add, LoadKeyring; afterwards it is
// read-only and safe for concurrent use. Add must not run concurrently with
// any other method.
type Keyring struct {
	keys map[string]*rsa.PublicKey
}

// NewKeyring returns an empty Keyring.
func NewKeyring() *Keyring { return &Keyring{keys: map[string]*rsa.PublicKey{}} }

// Add parses a PEM public key and adds it under name. The name must be a
// plain file name (no path separator) not already present.
func (k *Keyring) Add(name string, pemBytes []byte) error {
	if name == "" || name == "." || name == ".." || filepath.Base(name) != name {
		return fmt.Errorf("%w: %q", ErrKeyName, name)
	}
	if _, dup := k.keys[name]; dup {
		return fmt.Errorf("%w: duplicate %q", ErrKeyName, name)
	}
	pub, err := ParsePublicKey(pemBytes)
	if err != nil {
		return fmt.Errorf("key %q: %w", name, err)
	}
	k.keys[name] = pub
	return nil
}

// AddKey adds an already parsed key under name (same name rules as Add).
func (k *Keyring) AddKey(name string, pub *rsa.PublicKey) error {
	if name == "" || name == "." || name == ".." || filepath.Base(name) != name {
		return fmt.Errorf("%w: %q", ErrKeyName, name)
	}
	if _, dup := k.keys[name]; dup {
		return fmt.Errorf("%w: duplicate %q", ErrKeyName, name)
	}
	if pub == nil || pub.N == nil || pub.N.BitLen() < minKeyBits {
		return fmt.Errorf("key %q: %w: RSA key smaller than %d bits", name, ErrKeyFormat, minKeyBits)
	}
	k.keys[name] = pub
	return nil
}

// Key returns the key with exactly this name.
func (k *Keyring) Key(name string) (*rsa.PublicKey, bool) {
	if k == nil {
		return nil, false
	}
	pub, ok := k.keys[name]
	return pub, ok
}

// Names returns the key names in sorted order.
func (k *Keyring) Names() []string {
	if k == nil {
		return nil
	}
	names := make([]string, 0, len(k.keys))
	for n := range k.keys {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Len returns the number of keys.
func (k *Keyring) Len() int {
	if k == nil {
		return 0
	}
	return len(k.keys)
}

// LoadKeyring reads keys from the given paths. A path that is a directory
// contributes every regular file in it whose name does not start with "."
// (no recursion); a file path contributes that file. Each key is named by
// its file name. Any unreadable or malformed key file is an error: a
// keyring is trust configuration, so nothing is skipped silently.
func LoadKeyring(paths ...string) (*Keyring, error) {
	k := NewKeyring()
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("loading keyring: %w", err)
		}
		if !fi.IsDir() {
			if err := k.addFile(p); err != nil {
				return nil, err
			}
			continue
		}
		ents, err := os.ReadDir(p)
		if err != nil {
			return nil, fmt.Errorf("loading keyring: %w", err)
		}
		for _, e := range ents {
			if e.Name()[0] == '.' || !e.Type().IsRegular() {
				continue
			}
			if err := k.addFile(filepath.Join(p, e.Name())); err != nil {
				return nil, err
			}
		}
	}
	return k, nil
}

func (k *Keyring) addFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("loading keyring: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return fmt.Errorf("loading keyring: %w", err)
	}
	if len(b) > maxKeyFileSize {
		return fmt.Errorf("loading keyring: %s: %w: file larger than %d bytes", path, ErrKeyFormat, maxKeyFileSize)
	}
	if err := k.Add(filepath.Base(path), b); err != nil {
		return fmt.Errorf("loading keyring: %w", err)
	}
	return nil
}

// ParsePublicKey parses the first PEM block of b as an RSA public key, PKIX
// ("PUBLIC KEY", what abuild and melange write) or PKCS#1 ("RSA PUBLIC
// KEY"). Keys under 2048 bits are refused.
func ParsePublicKey(b []byte) (*rsa.PublicKey, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("%w: no PEM block", ErrKeyFormat)
	}
	var pub *rsa.PublicKey
	switch block.Type {
	case "PUBLIC KEY":
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrKeyFormat, err)
		}
		rk, ok := k.(*rsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("%w: %T is not RSA", ErrKeyFormat, k)
		}
		pub = rk
	case "RSA PUBLIC KEY":
		k, err := x509.ParsePKCS1PublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrKeyFormat, err)
		}
		pub = k
	default:
		return nil, fmt.Errorf("%w: PEM type %q", ErrKeyFormat, block.Type)
	}
	if pub.N.BitLen() < minKeyBits {
		return nil, fmt.Errorf("%w: %d-bit RSA key, need at least %d", ErrKeyFormat, pub.N.BitLen(), minKeyBits)
	}
	return pub, nil
}

package attest

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Errors about signing keys. None is ever a reason to sign with another key.
var (
	// ErrKeyPermissions reports a private key file that group or others may
	// read (or write). Fix with chmod 0600.
	ErrKeyPermissions = errors.New("signing key file is accessible by group or others")
	// ErrUnsupportedKey reports a key type cosign cannot verify with --key
	// (anything but ECDSA P-256 and Ed25519; cosign hashes with SHA-256,
	// so a P-384 signature would fail there even though it is valid).
	ErrUnsupportedKey = errors.New("unsupported signing key type")
	// ErrKeyFormat reports a key file that is not an unencrypted PEM private
	// key (PKCS#8 "PRIVATE KEY" or SEC 1 "EC PRIVATE KEY"), or a public key
	// that is not a PKIX "PUBLIC KEY".
	ErrKeyFormat = errors.New("malformed key")
)

// KeyType names a supported signing key algorithm.
type KeyType string

// Supported key types.
const (
	KeyECDSAP256 KeyType = "ecdsa-p256" // default
	KeyEd25519   KeyType = "ed25519"
)

// Signer signs vouch's attestations. Implementations MUST be safe for
// concurrent use. A file-based signer comes from LoadSigner or NewSigner; a
// KMS signer implements the same interface.
type Signer interface {
	// Public returns the public key (*ecdsa.PublicKey on P-256 or
	// ed25519.PublicKey).
	Public() crypto.PublicKey
	// KeyID returns KeyID(Public()): base64(SHA-256(PKIX DER)).
	KeyID() string
	// Sign signs the message data, not a digest: ECDSA P-256 signs
	// SHA-256(data) and returns an ASN.1 DER signature; Ed25519 signs data
	// itself (pure Ed25519). For DSSE, data is the PAE.
	Sign(ctx context.Context, data []byte) ([]byte, error)
}

// KeyID returns the key id vouch uses everywhere (bundle hint, DSSE keyid,
// the server's key listing): standard base64 of the SHA-256 of the public
// key's PKIX DER encoding — the convention cosign uses, so bundles are
// interchangeable.
func KeyID(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrUnsupportedKey, err)
	}
	sum := sha256.Sum256(der)
	return base64.StdEncoding.EncodeToString(sum[:]), nil
}

// checkPublicKey refuses every key type but ECDSA P-256 and Ed25519.
func checkPublicKey(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return fmt.Errorf("%w: ECDSA on %s: cosign verifies --key signatures with SHA-256 and refuses it; use P-256 or Ed25519",
				ErrUnsupportedKey, k.Curve.Params().Name)
		}
		return nil
	case ed25519.PublicKey:
		return nil
	default:
		return fmt.Errorf("%w: %T: only ECDSA P-256 and Ed25519 are supported", ErrUnsupportedKey, pub)
	}
}

// keySigner is the Signer over an in-memory private key.
type keySigner struct {
	priv  crypto.Signer
	pub   crypto.PublicKey
	keyID string
}

// NewSigner wraps an ECDSA P-256 or Ed25519 private key as a Signer. Other
// keys are ErrUnsupportedKey.
func NewSigner(priv crypto.Signer) (Signer, error) {
	pub := priv.Public()
	if err := checkPublicKey(pub); err != nil {
		return nil, err
	}
	id, err := KeyID(pub)
	if err != nil {
		return nil, err
	}
	return &keySigner{priv: priv, pub: pub, keyID: id}, nil
}

func (s *keySigner) Public() crypto.PublicKey { return s.pub }
func (s *keySigner) KeyID() string            { return s.keyID }

// digestSigner is implemented by signers that can sign a SHA-256 digest the
// caller already computed (ECDSA), sparing a second hash of a large payload.
type digestSigner interface {
	signDigest(ctx context.Context, digest []byte) ([]byte, error)
}

func (s *keySigner) signDigest(ctx context.Context, digest []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if k, ok := s.priv.(*ecdsa.PrivateKey); ok {
		return ecdsa.SignASN1(rand.Reader, k, digest)
	}
	if _, ok := s.pub.(ed25519.PublicKey); ok {
		return nil, fmt.Errorf("%w: Ed25519 signs messages, not digests", ErrUnsupportedKey)
	}
	return s.priv.Sign(rand.Reader, digest, crypto.SHA256)
}

func (s *keySigner) Sign(ctx context.Context, data []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	switch k := s.priv.(type) {
	case *ecdsa.PrivateKey:
		d := sha256.Sum256(data)
		return ecdsa.SignASN1(rand.Reader, k, d[:])
	case ed25519.PrivateKey:
		return ed25519.Sign(k, data), nil
	default:
		if _, ok := s.pub.(ed25519.PublicKey); ok {
			return s.priv.Sign(rand.Reader, data, crypto.Hash(0))
		}
		d := sha256.Sum256(data)
		return s.priv.Sign(rand.Reader, d[:], crypto.SHA256)
	}
}

// maxKeyFile bounds what LoadSigner reads.
const maxKeyFile = 64 << 10

// LoadSigner reads an unencrypted PEM private key (PKCS#8 "PRIVATE KEY" or
// SEC 1 "EC PRIVATE KEY") from path and returns its Signer. It refuses a file
// that group or others can access (ErrKeyPermissions), a key that is not
// ECDSA P-256 or Ed25519 (ErrUnsupportedKey) and anything unparsable,
// including encrypted cosign keys (ErrKeyFormat). It never logs key bytes.
func LoadSigner(path string) (Signer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening signing key: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("opening signing key: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is not a regular file", ErrKeyFormat, path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %04o; want 0600 or stricter", ErrKeyPermissions, path, perm)
	}
	if fi.Size() > maxKeyFile {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrKeyFormat, path, maxKeyFile)
	}
	data := make([]byte, fi.Size())
	if _, err := f.ReadAt(data, 0); err != nil && fi.Size() > 0 {
		return nil, fmt.Errorf("reading signing key: %w", err)
	}
	s, err := ParsePrivateKeyPEM(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// ParsePrivateKeyPEM parses the first PEM block of data as an unencrypted
// private key and returns its Signer; see LoadSigner for what is accepted.
func ParsePrivateKeyPEM(data []byte) (Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%w: no PEM block", ErrKeyFormat)
	}
	var (
		key any
		err error
	)
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "ENCRYPTED SIGSTORE PRIVATE KEY", "ENCRYPTED COSIGN PRIVATE KEY", "ENCRYPTED PRIVATE KEY":
		return nil, fmt.Errorf("%w: PEM %q is encrypted; vouch needs an unencrypted PKCS#8 key protected by file permissions", ErrKeyFormat, block.Type)
	default:
		return nil, fmt.Errorf("%w: PEM block %q; want \"PRIVATE KEY\" or \"EC PRIVATE KEY\"", ErrKeyFormat, block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKeyFormat, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%w: %T", ErrUnsupportedKey, key)
	}
	return NewSigner(signer)
}

// ParsePublicKeyPEM parses a PKIX "PUBLIC KEY" PEM block, accepting only
// ECDSA P-256 and Ed25519.
func ParsePublicKeyPEM(data []byte) (crypto.PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PUBLIC KEY" {
		return nil, fmt.Errorf("%w: want a PEM \"PUBLIC KEY\" block", ErrKeyFormat)
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKeyFormat, err)
	}
	if err := checkPublicKey(pub); err != nil {
		return nil, err
	}
	return pub, nil
}

// PublicKeyPEM returns the signer's public key as a PKIX "PUBLIC KEY" PEM
// block and its key id: what the server publishes and `cosign --key` reads.
func PublicKeyPEM(s Signer) (pemBytes []byte, keyID string, err error) {
	der, err := x509.MarshalPKIXPublicKey(s.Public())
	if err != nil {
		return nil, "", fmt.Errorf("%w: %v", ErrUnsupportedKey, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), s.KeyID(), nil
}

// GenerateKey creates a new key of type t ("" means KeyECDSAP256) and
// returns the private key as PKCS#8 PEM, the public key as PKIX PEM and the
// key id.
func GenerateKey(t KeyType) (privPEM, pubPEM []byte, keyID string, err error) {
	var priv crypto.Signer
	switch t {
	case "", KeyECDSAP256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case KeyEd25519:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		return nil, nil, "", fmt.Errorf("%w: %q; want %q or %q", ErrUnsupportedKey, t, KeyECDSAP256, KeyEd25519)
	}
	if err != nil {
		return nil, nil, "", fmt.Errorf("generating key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, nil, "", fmt.Errorf("encoding private key: %w", err)
	}
	s, err := NewSigner(priv)
	if err != nil {
		return nil, nil, "", err
	}
	pubPEM, keyID, err = PublicKeyPEM(s)
	if err != nil {
		return nil, nil, "", err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), pubPEM, keyID, nil
}

// Key file names written by WriteKeyFiles.
const (
	PrivateKeyFile = "vouch.key"
	PublicKeyFile  = "vouch.pub"
)

// WriteKeyFiles generates a key of type t and writes dir/vouch.key (mode
// 0600) and dir/vouch.pub (mode 0644), creating dir (0700) if needed. It
// refuses to overwrite either file. It returns the key id.
func WriteKeyFiles(dir string, t KeyType) (string, error) {
	privPEM, pubPEM, keyID, err := GenerateKey(t)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("creating key folder: %w", err)
	}
	privPath, pubPath := filepath.Join(dir, PrivateKeyFile), filepath.Join(dir, PublicKeyFile)
	for _, p := range []string{privPath, pubPath} {
		if _, err := os.Lstat(p); err == nil {
			return "", fmt.Errorf("writing key: %s: %w", p, fs.ErrExist)
		}
	}
	if err := writeNew(privPath, privPEM, 0o600); err != nil {
		return "", err
	}
	if err := writeNew(pubPath, pubPEM, 0o644); err != nil {
		_ = os.Remove(privPath)
		return "", err
	}
	return keyID, nil
}

func writeNew(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("writing key: %w", err)
	}
	if err := f.Chmod(mode); err != nil { // exactly mode, whatever the umask
		f.Close()
		return fmt.Errorf("writing key: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("writing key: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing key: %w", err)
	}
	return nil
}

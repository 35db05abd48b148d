package apk

import (
	"crypto"
	"crypto/rsa"
	"errors"
	"fmt"
	"hash"
	"strings"

	_ "crypto/sha1" //nolint:gosec // RSA (SHA-1) signatures are still in use (APK-FORMAT §1.2).
	_ "crypto/sha256"
	_ "crypto/sha512"
)

// Signature errors, shared by indexes and packages. Every one of them is a
// refusal; errors.Is(err, ErrSignature) matches them all.
var (
	// ErrSignature is the parent of all signature errors.
	ErrSignature = errors.New("signature check failed")
	// ErrNoSignature reports an index without a signature member (an
	// unsigned, single-part index), or a package whose signature is required
	// but absent.
	ErrNoSignature = fmt.Errorf("%w: no signature", ErrSignature)
	// ErrNonSignatureEntry reports a tar entry in the signature member whose
	// name does not start with ".SIGN." (smuggling unsigned content).
	ErrNonSignatureEntry = fmt.Errorf("%w: non-signature entry in signature member", ErrSignature)
	// ErrUnknownSignatureAlgorithm reports a ".SIGN.<ALG>." other than RSA,
	// RSA256 or RSA512 (for example the obsolete DSA).
	ErrUnknownSignatureAlgorithm = fmt.Errorf("%w: unknown signature algorithm", ErrSignature)
	// ErrSignatureTooLarge reports a signature entry over 64 KiB (apk-tools
	// ignores those; vouch refuses them), or too many signature entries.
	ErrSignatureTooLarge = fmt.Errorf("%w: signature too large", ErrSignature)
	// ErrUntrustedKey reports that no signature names a key in the keyring.
	ErrUntrustedKey = fmt.Errorf("%w: no signature by a trusted key", ErrSignature)
	// ErrBadSignature reports a signature by a trusted key that does not
	// verify. It is never skipped in favour of another signature.
	ErrBadSignature = fmt.Errorf("%w: bad signature", ErrSignature)
)

// MaxSignatureSize is the largest signature entry accepted (apk-tools reads
// at most 64 KiB of signature, APK-FORMAT §4).
const MaxSignatureSize = 64 << 10

// maxSignatures bounds the number of .SIGN entries in one signature member.
const maxSignatures = 16

// SignatureAlgorithm is the <ALG> of a ".SIGN.<ALG>.<keyname>" entry.
type SignatureAlgorithm uint8

const (
	// SigUnknown is the zero value.
	SigUnknown SignatureAlgorithm = iota
	// SigRSA is ".SIGN.RSA.": RSA PKCS#1 v1.5 over SHA-1.
	SigRSA
	// SigRSA256 is ".SIGN.RSA256.": RSA PKCS#1 v1.5 over SHA-256.
	SigRSA256
	// SigRSA512 is ".SIGN.RSA512.": RSA PKCS#1 v1.5 over SHA-512.
	SigRSA512
)

// String returns the name used in the tar entry ("RSA", "RSA256", "RSA512").
func (a SignatureAlgorithm) String() string {
	switch a {
	case SigRSA:
		return "RSA"
	case SigRSA256:
		return "RSA256"
	case SigRSA512:
		return "RSA512"
	default:
		return "unknown"
	}
}

// Hash returns the digest algorithm the signature is computed over.
func (a SignatureAlgorithm) Hash() crypto.Hash {
	switch a {
	case SigRSA:
		return crypto.SHA1
	case SigRSA256:
		return crypto.SHA256
	case SigRSA512:
		return crypto.SHA512
	default:
		return 0
	}
}

// MarshalText renders String, so JSON output carries the name.
func (a SignatureAlgorithm) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// ParseSignatureName splits a ".SIGN.<ALG>.<keyname>" tar entry name
// (APK-FORMAT §1.2). A name without the ".SIGN." prefix is
// ErrNonSignatureEntry; an algorithm other than RSA, RSA256, RSA512 is
// ErrUnknownSignatureAlgorithm; an empty or path-like key name is
// ErrNonSignatureEntry.
func ParseSignatureName(name string) (SignatureAlgorithm, string, error) {
	rest, ok := strings.CutPrefix(name, ".SIGN.")
	if !ok {
		return SigUnknown, "", fmt.Errorf("%w: %q", ErrNonSignatureEntry, truncate(name))
	}
	algName, key, ok := strings.Cut(rest, ".")
	if !ok {
		return SigUnknown, "", fmt.Errorf("%w: %q", ErrUnknownSignatureAlgorithm, truncate(name))
	}
	var alg SignatureAlgorithm
	switch algName {
	case "RSA":
		alg = SigRSA
	case "RSA256":
		alg = SigRSA256
	case "RSA512":
		alg = SigRSA512
	default:
		return SigUnknown, "", fmt.Errorf("%w: %q in %q", ErrUnknownSignatureAlgorithm, truncate(algName), truncate(name))
	}
	if key == "" || strings.ContainsAny(key, "/\x00") || key == "." || key == ".." {
		return SigUnknown, "", fmt.Errorf("%w: bad key name in %q", ErrNonSignatureEntry, truncate(name))
	}
	return alg, key, nil
}

// verifyDigest checks an RSA PKCS#1 v1.5 signature over a precomputed
// digest of the algorithm's hash.
func verifyDigest(pub *rsa.PublicKey, alg SignatureAlgorithm, digest, sig []byte) error {
	if err := rsa.VerifyPKCS1v15(pub, alg.Hash(), digest, sig); err != nil {
		return err
	}
	return nil
}

// newHash returns a fresh hash for alg.
func newHash(alg SignatureAlgorithm) hash.Hash { return alg.Hash().New() }

// UnmarshalText parses "RSA", "RSA256" or "RSA512".
func (a *SignatureAlgorithm) UnmarshalText(b []byte) error {
	alg, _, err := ParseSignatureName(".SIGN." + string(b) + ".k")
	if err != nil {
		return err
	}
	*a = alg
	return nil
}

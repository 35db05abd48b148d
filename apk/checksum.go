package apk

import (
	"bytes"
	"crypto/sha1" //nolint:gosec // APK v2 identities are SHA-1 by definition (APK-FORMAT §2).
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// ChecksumAlgorithm names the hash behind a package identity checksum.
type ChecksumAlgorithm uint8

const (
	// ChecksumUnknown is the zero value; no valid Checksum carries it.
	ChecksumUnknown ChecksumAlgorithm = iota
	// ChecksumSHA1 is the apk v2 identity: SHA-1 of the raw control gzip member.
	ChecksumSHA1
	// ChecksumSHA256 is the apk-tools 3 form (Q2/X2, or Q1 with 32 bytes).
	ChecksumSHA256
)

// String returns "sha1", "sha256" or "unknown".
func (a ChecksumAlgorithm) String() string {
	switch a {
	case ChecksumSHA1:
		return "sha1"
	case ChecksumSHA256:
		return "sha256"
	default:
		return "unknown"
	}
}

// Size is the digest length in bytes of the algorithm, or 0 for ChecksumUnknown.
func (a ChecksumAlgorithm) Size() int {
	switch a {
	case ChecksumSHA1:
		return sha1.Size
	case ChecksumSHA256:
		return sha256.Size
	default:
		return 0
	}
}

// Errors returned by ParseChecksum. Callers treat every one of them as a
// refusal of the value; none is ever a pass.
var (
	// ErrChecksumFormat reports a checksum whose prefix is not Q1, Q2, X1 or X2.
	ErrChecksumFormat = errors.New("unknown checksum format")
	// ErrChecksumEncoding reports a checksum whose base64 or hex body is invalid
	// or has the wrong length for its algorithm.
	ErrChecksumEncoding = errors.New("malformed checksum")
)

// Checksum is a typed package identity: algorithm plus digest bytes.
// The zero value is invalid (IsZero reports true).
type Checksum struct {
	Alg    ChecksumAlgorithm
	Digest []byte
}

// ParseChecksum parses an APK identity checksum as written in an index `C:`
// line, an installed database or a lock file:
//
//	Q1<base64 SHA-1 (28 chars)>     apk v2 (Q1 with 44 chars is SHA-256, as apk-tools 3 reads it)
//	Q2<base64 SHA-256>              apk-tools 3
//	X1<hex SHA-1>, X2<hex SHA-256>  hex forms
//
// Anything else, including bare MD5 hex, is ErrChecksumFormat; a body that
// does not decode to the algorithm's size is ErrChecksumEncoding.
func ParseChecksum(s string) (Checksum, error) {
	if len(s) < 3 {
		return Checksum{}, fmt.Errorf("%w: %q", ErrChecksumFormat, truncate(s))
	}
	prefix, body := s[:2], s[2:]
	var (
		alg    ChecksumAlgorithm
		digest []byte
		err    error
	)
	switch prefix {
	case "Q1", "Q2":
		digest, err = base64.StdEncoding.Strict().DecodeString(body)
		if err != nil {
			return Checksum{}, fmt.Errorf("%w: %q: %v", ErrChecksumEncoding, truncate(s), err)
		}
		switch {
		case prefix == "Q1" && len(digest) == sha1.Size:
			alg = ChecksumSHA1
		case len(digest) == sha256.Size:
			alg = ChecksumSHA256
		default:
			return Checksum{}, fmt.Errorf("%w: %q: %d-byte digest", ErrChecksumEncoding, truncate(s), len(digest))
		}
	case "X1", "X2":
		if strings.ToLower(body) != body {
			return Checksum{}, fmt.Errorf("%w: %q: hex must be lower case", ErrChecksumEncoding, truncate(s))
		}
		digest, err = hex.DecodeString(body)
		if err != nil {
			return Checksum{}, fmt.Errorf("%w: %q: %v", ErrChecksumEncoding, truncate(s), err)
		}
		alg = ChecksumSHA1
		if prefix == "X2" {
			alg = ChecksumSHA256
		}
		if len(digest) != alg.Size() {
			return Checksum{}, fmt.Errorf("%w: %q: %d-byte digest", ErrChecksumEncoding, truncate(s), len(digest))
		}
	default:
		return Checksum{}, fmt.Errorf("%w: %q", ErrChecksumFormat, truncate(s))
	}
	return Checksum{Alg: alg, Digest: digest}, nil
}

// SHA1Checksum wraps a 20-byte SHA-1 digest as a Checksum.
func SHA1Checksum(sum [sha1.Size]byte) Checksum {
	return Checksum{Alg: ChecksumSHA1, Digest: append([]byte(nil), sum[:]...)}
}

// IsZero reports whether c is the invalid zero value.
func (c Checksum) IsZero() bool { return c.Alg == ChecksumUnknown || len(c.Digest) == 0 }

// Equal reports whether c and o are the same algorithm and digest.
func (c Checksum) Equal(o Checksum) bool {
	return c.Alg == o.Alg && bytes.Equal(c.Digest, o.Digest)
}

// String renders the canonical form: Q1+base64 for SHA-1, Q2+base64 for
// SHA-256. It round-trips through ParseChecksum.
func (c Checksum) String() string {
	switch c.Alg {
	case ChecksumSHA1:
		return "Q1" + base64.StdEncoding.EncodeToString(c.Digest)
	case ChecksumSHA256:
		return "Q2" + base64.StdEncoding.EncodeToString(c.Digest)
	default:
		return ""
	}
}

// Hex returns the digest as lower-case hex (the form SPDX checksums use).
func (c Checksum) Hex() string { return hex.EncodeToString(c.Digest) }

// Key returns a compact string usable as a map key: one algorithm byte then
// the raw digest.
func (c Checksum) Key() string { return string(append([]byte{byte(c.Alg)}, c.Digest...)) }

func truncate(s string) string {
	const max = 80
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}

package apk

import (
	"crypto/sha1" //nolint:gosec // APK v2 identities are SHA-1 by definition (APK-FORMAT §2).
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Errors about a single package record (index entry or installed-database
// record).
var (
	// ErrInvalidEntry is the parent of every per-record error below.
	ErrInvalidEntry = errors.New("invalid package record")
	// ErrMissingField reports a record without one of C, P, V, A.
	ErrMissingField = fmt.Errorf("%w: missing required field", ErrInvalidEntry)
	// ErrDuplicateField reports a record that repeats a single-valued field.
	ErrDuplicateField = fmt.Errorf("%w: repeated field", ErrInvalidEntry)
	// ErrUnknownField reports an unknown upper-case key, which apk-tools
	// treats as "not installable" (APK-FORMAT §1.3).
	ErrUnknownField = fmt.Errorf("%w: unknown upper-case field", ErrInvalidEntry)
	// ErrFieldSyntax reports a line that is not "K:value" or a malformed
	// numeric value.
	ErrFieldSyntax = fmt.Errorf("%w: malformed line", ErrInvalidEntry)
	// ErrEntryChecksum reports a C: value that ParseChecksum refuses; it
	// also matches ErrChecksumFormat or ErrChecksumEncoding via errors.Is.
	ErrEntryChecksum = fmt.Errorf("%w: bad checksum", ErrInvalidEntry)
	// ErrConflictingEntries reports an index that lists one (name, version,
	// arch) more than once with different checksums.
	ErrConflictingEntries = fmt.Errorf("%w: conflicting entries for one name, version and arch", ErrInvalidEntry)
)

// Entry is one package record of an APKINDEX or installed database
// (APK-FORMAT §1.3). Strings are exact field values; list fields (D, p, i, r,
// g) are kept as written (space separated) and split by the *List methods.
// Numeric fields are 0 when absent.
//
// An Entry obtained from an Index aliases the index text: it is cheap and
// immutable, and its Checksum.Digest is a private copy.
type Entry struct {
	Checksum         Checksum // C: package identity (Q1 = SHA-1 of the control member)
	Name             string   // P
	Version          string   // V
	Arch             string   // A (may be rewritten for noarch packages)
	Size             int64    // S: size of the .apk file including its signature
	InstalledSize    int64    // I
	Description      string   // T
	URL              string   // U
	License          string   // L
	Origin           string   // o
	Maintainer       string   // m
	BuildTime        int64    // t: unix seconds
	Commit           string   // c
	Depends          string   // D
	Provides         string   // p
	InstallIf        string   // i (apko writes "[]" or "[a b]" in installed DBs; normalised)
	ProviderPriority int64    // k
	Replaces         string   // r
	ReplacesPriority int64    // q
	Tags             string   // g
}

// DependsList splits D into its tokens.
func (e *Entry) DependsList() []string { return strings.Fields(e.Depends) }

// ProvidesList splits p into its tokens.
func (e *Entry) ProvidesList() []string { return strings.Fields(e.Provides) }

// InstallIfList splits i into its tokens.
func (e *Entry) InstallIfList() []string { return strings.Fields(e.InstallIf) }

// ReplacesList splits r into its tokens.
func (e *Entry) ReplacesList() []string { return strings.Fields(e.Replaces) }

// TagsList splits g into its tokens.
func (e *Entry) TagsList() []string { return strings.Fields(e.Tags) }

// field bits, for duplicate detection.
const (
	fC = 1 << iota
	fP
	fV
	fA
	fS
	fI
	fT
	fU
	fL
	fo
	fm
	ft
	fc
	fD
	fp
	fi
	fk
	fr
	fq
	fg
)

// setField stores one "key:value" of the package part of a record
// (APK-FORMAT §1.3). It returns known=false for a key that is not a package
// field, leaving the decision to the caller. rawC receives the C: value.
// seen tracks single-valued fields already set.
func setField(e *Entry, rawC *string, seen *uint32, key byte, val string) (known bool, err error) {
	var bit uint32
	switch key {
	case 'C':
		bit, *rawC = fC, val
	case 'P':
		bit, e.Name = fP, val
	case 'V':
		bit, e.Version = fV, val
	case 'A':
		bit, e.Arch = fA, val
	case 'S':
		bit = fS
		e.Size, err = parseUint(val)
	case 'I':
		bit = fI
		e.InstalledSize, err = parseUint(val)
	case 'T':
		bit, e.Description = fT, val
	case 'U':
		bit, e.URL = fU, val
	case 'L':
		bit, e.License = fL, val
	case 'o':
		bit, e.Origin = fo, val
	case 'm':
		bit, e.Maintainer = fm, val
	case 't':
		bit = ft
		e.BuildTime, err = parseUint(val)
	case 'c':
		bit, e.Commit = fc, val
	case 'D':
		bit, e.Depends = fD, val
	case 'p':
		bit, e.Provides = fp, val
	case 'i':
		// apko's installed DB prints a Go []string: "[]" or "[a b]" (APK-FORMAT §6).
		if len(val) >= 2 && val[0] == '[' && val[len(val)-1] == ']' {
			val = val[1 : len(val)-1]
		}
		bit, e.InstallIf = fi, val
	case 'k':
		bit = fk
		e.ProviderPriority, err = parseUint(val)
	case 'r':
		bit, e.Replaces = fr, val
	case 'q':
		bit = fq
		e.ReplacesPriority, err = parseUint(val)
	case 'g':
		bit, e.Tags = fg, val
	default:
		return false, nil
	}
	if err != nil {
		return true, fmt.Errorf("%w: %c:%s", ErrFieldSyntax, key, truncate(val))
	}
	if val == "" && bit&(fC|fP|fV|fA) != 0 {
		// "P:" names no package: as good as absent.
		return true, fmt.Errorf("%w: %c is empty", ErrMissingField, key)
	}
	if *seen&bit != 0 {
		return true, fmt.Errorf("%w: %c", ErrDuplicateField, key)
	}
	*seen |= bit
	return true, nil
}

// checkRequired reports a missing C, P, V or A.
func checkRequired(seen uint32) error {
	for _, f := range []struct {
		bit uint32
		key byte
	}{{fC, 'C'}, {fP, 'P'}, {fV, 'V'}, {fA, 'A'}} {
		if seen&f.bit == 0 {
			return fmt.Errorf("%w: %c", ErrMissingField, f.key)
		}
	}
	return nil
}

func parseUint(s string) (int64, error) {
	if s == "" {
		return 0, strconv.ErrSyntax
	}
	// Fast path for the common case; ParseInt handles overflow below.
	if len(s) < 18 {
		var n int64
		for i := 0; i < len(s); i++ {
			c := s[i]
			if c < '0' || c > '9' {
				return 0, strconv.ErrSyntax
			}
			n = n*10 + int64(c-'0')
		}
		return n, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, strconv.ErrSyntax
	}
	return n, nil
}

// digest is a fixed-size checksum used inside the index to avoid per-entry
// allocations.
type digest struct {
	alg ChecksumAlgorithm
	sum [sha256.Size]byte
}

func (d *digest) checksum() Checksum {
	n := d.alg.Size()
	return Checksum{Alg: d.alg, Digest: append(make([]byte, 0, n), d.sum[:n]...)}
}

// parseDigest parses a checksum like ParseChecksum without allocating on
// the Q1 fast path.
func parseDigest(s string, d *digest) error {
	if len(s) == 30 && s[0] == 'Q' && s[1] == '1' {
		var buf [21]byte
		n, err := base64.StdEncoding.Strict().Decode(buf[:], []byte(s[2:]))
		if err == nil && n == sha1.Size {
			d.alg = ChecksumSHA1
			copy(d.sum[:], buf[:n])
			return nil
		}
	}
	if len(s) == 42 && s[0] == 'X' && s[1] == '1' {
		var buf [sha1.Size]byte
		if strings.ToLower(s) == s {
			if n, err := hex.Decode(buf[:], []byte(s[2:])); err == nil && n == sha1.Size {
				d.alg = ChecksumSHA1
				copy(d.sum[:], buf[:])
				return nil
			}
		}
	}
	c, err := ParseChecksum(s)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrEntryChecksum, err)
	}
	d.alg = c.Alg
	copy(d.sum[:], c.Digest)
	return nil
}

// AppendRecord appends e as an APKINDEX record in apk-tools field order
// (C P V A S I T U L o m t c k D p i r q g, APK-FORMAT §1.3), without the
// blank line that separates records. C, P, V, A, S, I are always written;
// other fields only when non-zero. ParseIndex reads it back unchanged.
func (e *Entry) AppendRecord(b []byte) []byte {
	str := func(k byte, v string, always bool) {
		if v != "" || always {
			b = append(b, k, ':')
			b = append(b, v...)
			b = append(b, '\n')
		}
	}
	num := func(k byte, v int64, always bool) {
		if v != 0 || always {
			b = append(b, k, ':')
			b = strconv.AppendInt(b, v, 10)
			b = append(b, '\n')
		}
	}
	str('C', e.Checksum.String(), true)
	str('P', e.Name, true)
	str('V', e.Version, true)
	str('A', e.Arch, true)
	num('S', e.Size, true)
	num('I', e.InstalledSize, true)
	str('T', e.Description, false)
	str('U', e.URL, false)
	str('L', e.License, false)
	str('o', e.Origin, false)
	str('m', e.Maintainer, false)
	num('t', e.BuildTime, false)
	str('c', e.Commit, false)
	num('k', e.ProviderPriority, false)
	str('D', e.Depends, false)
	str('p', e.Provides, false)
	str('i', e.InstallIf, false)
	str('r', e.Replaces, false)
	num('q', e.ReplacesPriority, false)
	str('g', e.Tags, false)
	return b
}

package apk

import (
	"bytes"
	"crypto/sha1" //nolint:gosec // lock files carry SHA-1 of the control member (APK-FORMAT §5).
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Lock file errors; all match ErrLockFormat.
var (
	// ErrLockFormat reports an apko lock file vouch cannot use.
	ErrLockFormat = errors.New("malformed apko lock file")
	// ErrLockNoChecksum reports a package without "checksum" (lock files
	// from before apko 0.13): regenerate the lock file.
	ErrLockNoChecksum = fmt.Errorf("%w: package has no checksum; regenerate the lock file", ErrLockFormat)
	// ErrLockChecksumMismatch reports a package whose checksum is not
	// "Q1" + its control checksum.
	ErrLockChecksumMismatch = fmt.Errorf("%w: checksum does not match control checksum", ErrLockFormat)
)

// MaxLockSize bounds a lock file read by ParseLock.
const MaxLockSize = 16 << 20

// Lock is an apko lock file, version v1 (APK-FORMAT §5).
type Lock struct {
	Version  string       `json:"version"`
	Config   *LockConfig  `json:"config,omitempty"`
	Contents LockContents `json:"contents"`
}

// LockConfig names the apko configuration the lock was made from.
type LockConfig struct {
	Name     string `json:"name"`
	Checksum string `json:"checksum"`
}

// LockContents is the locked keyring, repositories and packages.
type LockContents struct {
	Keyring             []LockKey        `json:"keyring"`
	BuildRepositories   []LockRepository `json:"build_repositories,omitempty"`
	RuntimeRepositories []LockRepository `json:"runtime_repositories,omitempty"`
	Repositories        []LockRepository `json:"repositories"`
	Packages            []LockPackage    `json:"packages"`
}

// LockKey is a keyring entry; Content (PEM) is written by newer apko.
type LockKey struct {
	Name    string `json:"name"`
	URL     string `json:"url"`
	Content string `json:"content,omitempty"`
}

// LockRepository is a repository entry.
type LockRepository struct {
	Name         string `json:"name"`
	URL          string `json:"url"`
	Architecture string `json:"architecture"`
}

// LockPackage is one locked package. Only URL and Checksum are used by
// apko at build time; the sections are informational (APK-FORMAT §5).
type LockPackage struct {
	Name         string      `json:"name"`
	URL          string      `json:"url"`
	Version      string      `json:"version"`
	Architecture string      `json:"architecture"`
	Signature    LockSection `json:"signature"`
	Control      LockSection `json:"control"`
	Data         LockSection `json:"data"`
	Checksum     string      `json:"checksum"`
}

// LockSection is a byte range ("bytes=a-b", inclusive end; "" for an
// absent signature) and a checksum ("sha1-<b64>" or "sha256-<b64>").
type LockSection struct {
	Range    string `json:"range"`
	Checksum string `json:"checksum"`
}

// Section parses Range; an empty Range gives the zero Section.
func (s LockSection) Section() (Section, error) {
	if s.Range == "" {
		return Section{}, nil
	}
	spec, ok := strings.CutPrefix(s.Range, "bytes=")
	a, b, ok2 := strings.Cut(spec, "-")
	if !ok || !ok2 {
		return Section{}, fmt.Errorf("%w: range %q", ErrLockFormat, truncate(s.Range))
	}
	start, err1 := strconv.ParseInt(a, 10, 64)
	end, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || start < 0 || end < start {
		return Section{}, fmt.Errorf("%w: range %q", ErrLockFormat, truncate(s.Range))
	}
	return Section{Offset: start, Size: end - start + 1}, nil
}

// digest decodes "<alg>-<base64>" for the given prefix and size.
func (s LockSection) digest(prefix string, size int) ([]byte, error) {
	body, ok := strings.CutPrefix(s.Checksum, prefix+"-")
	if !ok {
		return nil, fmt.Errorf("%w: checksum %q, want %s-<base64>", ErrLockFormat, truncate(s.Checksum), prefix)
	}
	d, err := base64.StdEncoding.Strict().DecodeString(body)
	if err != nil || len(d) != size {
		return nil, fmt.Errorf("%w: checksum %q", ErrLockFormat, truncate(s.Checksum))
	}
	return d, nil
}

// Identity returns the package's Q1 checksum (its index C: value).
func (p *LockPackage) Identity() (Checksum, error) {
	if p.Checksum == "" {
		return Checksum{}, ErrLockNoChecksum
	}
	c, err := ParseChecksum(p.Checksum)
	if err != nil {
		return Checksum{}, fmt.Errorf("%w: %w", ErrLockFormat, err)
	}
	return c, nil
}

// DataSHA256 returns the data checksum; it equals the .PKGINFO datahash
// (hex there, base64 here).
func (p *LockPackage) DataSHA256() ([sha256.Size]byte, error) {
	var out [sha256.Size]byte
	d, err := p.Data.digest("sha256", sha256.Size)
	if err != nil {
		return out, err
	}
	copy(out[:], d)
	return out, nil
}

// Validate checks one package (APK-FORMAT §5): name, version, architecture
// and url set; checksum present (else ErrLockNoChecksum), a Q1 SHA-1,
// equal to "Q1" + the base64 of control.checksum (else
// ErrLockChecksumMismatch); data.checksum a sha256; ranges well formed and
// contiguous (signature, then control, then data; control at 0 when
// unsigned).
func (p *LockPackage) Validate() error {
	if p.Name == "" || p.Version == "" || p.Architecture == "" || p.URL == "" {
		return fmt.Errorf("%w: name, version, architecture and url are required", ErrLockFormat)
	}
	c, err := p.Identity()
	if err != nil {
		return err
	}
	if c.Alg != ChecksumSHA1 || !strings.HasPrefix(p.Checksum, "Q1") {
		return fmt.Errorf("%w: checksum %q is not Q1", ErrLockFormat, truncate(p.Checksum))
	}
	ctl, err := p.Control.digest("sha1", sha1.Size)
	if err != nil {
		return fmt.Errorf("control: %w", err)
	}
	if !bytes.Equal(ctl, c.Digest) {
		return fmt.Errorf("%w: %s vs control %s", ErrLockChecksumMismatch, p.Checksum, p.Control.Checksum)
	}
	if _, err := p.DataSHA256(); err != nil {
		return fmt.Errorf("data: %w", err)
	}
	sig, err := p.Signature.Section()
	if err != nil {
		return err
	}
	if (p.Signature.Range == "") != (p.Signature.Checksum == "") {
		return fmt.Errorf("%w: signature range and checksum must both be set or both empty", ErrLockFormat)
	}
	if p.Signature.Checksum != "" {
		if _, err := p.Signature.digest("sha1", sha1.Size); err != nil {
			return fmt.Errorf("signature: %w", err)
		}
	}
	ctlSec, err := p.Control.Section()
	if err != nil {
		return err
	}
	dataSec, err := p.Data.Section()
	if err != nil {
		return err
	}
	if ctlSec.Size == 0 || dataSec.Size == 0 || ctlSec.Offset != sig.Offset+sig.Size || dataSec.Offset != ctlSec.Offset+ctlSec.Size {
		return fmt.Errorf("%w: ranges %q %q %q are not contiguous", ErrLockFormat, p.Signature.Range, p.Control.Range, p.Data.Range)
	}
	return nil
}

// ParseLock reads and validates an apko lock file (version "v1"); every
// package must pass LockPackage.Validate. Input over MaxLockSize is refused.
func ParseLock(r io.Reader) (*Lock, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxLockSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading lock file: %w", err)
	}
	if len(b) > MaxLockSize {
		return nil, fmt.Errorf("%w: over %d bytes", ErrLockFormat, MaxLockSize)
	}
	var l Lock
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&l); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrLockFormat, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: data after the JSON document", ErrLockFormat)
	}
	if l.Version != "v1" {
		return nil, fmt.Errorf("%w: version %q, want v1", ErrLockFormat, truncate(l.Version))
	}
	for i := range l.Contents.Packages {
		p := &l.Contents.Packages[i]
		if err := p.Validate(); err != nil {
			return nil, fmt.Errorf("package %d (%s): %w", i, truncate(p.Name), err)
		}
	}
	return &l, nil
}

// MatchPackage checks a digested package against this lock entry: Q1
// equals checksum, and when the lock records them, the section ranges and
// the data SHA-256 match. It returns ErrLockChecksumMismatch on any
// difference.
func (p *LockPackage) MatchPackage(pkg *Package) error {
	c, err := p.Identity()
	if err != nil {
		return err
	}
	if !c.Equal(pkg.Checksum) {
		return fmt.Errorf("%w: lock %s, package %s", ErrLockChecksumMismatch, p.Checksum, pkg.Checksum)
	}
	if d, err := p.DataSHA256(); err != nil || d != pkg.DataSHA256 {
		return fmt.Errorf("%w: data sha256 differs", ErrLockChecksumMismatch)
	}
	if p.Control.Range != pkg.Control.Range() || p.Data.Range != pkg.Data.Range() || p.Signature.Range != pkg.SignatureMember.Range() {
		return fmt.Errorf("%w: ranges differ", ErrLockChecksumMismatch)
	}
	if p.Signature.Checksum != "" && p.Signature.Checksum != "sha1-"+base64.StdEncoding.EncodeToString(pkg.SignatureSHA1[:]) {
		return fmt.Errorf("%w: signature sha1 differs", ErrLockChecksumMismatch)
	}
	return nil
}

package apk

import (
	"archive/tar"
	"bytes"
	"crypto/sha1" //nolint:gosec // Q1 identities are SHA-1 by definition (APK-FORMAT §2).
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"
	"sync"

	"github.com/klauspost/compress/gzip"
)

// Package errors. Structural errors (ErrPackageFormat and children) come
// with a nil *Package; verdict errors (ErrDataHashMismatch, ErrNoDataHash
// and the signature errors) come with the fully digested *Package.
var (
	// ErrPackageFormat reports bytes that are not an apk v2 package.
	ErrPackageFormat = errors.New("malformed .apk")
	// ErrPackageTooLarge reports a package or control member over the
	// configured limits.
	ErrPackageTooLarge = fmt.Errorf("%w: too large", ErrPackageFormat)
	// ErrDataHashMismatch reports a data part whose SHA-256 differs from
	// the datahash in .PKGINFO.
	ErrDataHashMismatch = errors.New("data hash mismatch")
	// ErrNoDataHash reports a package whose .PKGINFO has no datahash: a
	// legacy package, refused (fail closed, APK-FORMAT §8.11).
	ErrNoDataHash = errors.New("package has no datahash")
)

// Defaults for PackageOptions.
const (
	// DefaultMaxControlSize bounds the decompressed control member (as
	// apko: 10 MiB).
	DefaultMaxControlSize = 10 << 20
	// DefaultMaxPackageSize bounds the whole file (as apko's data bound:
	// 16 GiB).
	DefaultMaxPackageSize = 16 << 30
	// maxMemberHeader bounds the raw compressed bytes of the signature
	// member.
	maxSignatureMember = 1 << 20
)

// PackageOptions control ReadPackage. The zero value digests and checks
// datahash without checking the package signature.
type PackageOptions struct {
	// Keys, when non-nil, turns on the package signature check: every
	// signature by a key in Keys must verify (else ErrBadSignature) and at
	// least one must exist (else ErrUntrustedKey, or ErrNoSignature for an
	// unsigned package when RequireSignature is set). apk-tools and apko
	// never check package signatures when installing from a repository;
	// the index C: is what binds a package (APK-FORMAT §2).
	Keys *Keyring
	// RequireSignature makes an unsigned package an error (needs Keys).
	RequireSignature bool
	// MaxControlSize bounds the decompressed control member; 0 means
	// DefaultMaxControlSize.
	MaxControlSize int64
	// MaxSize bounds the whole file; 0 means DefaultMaxPackageSize.
	MaxSize int64
}

// Validate reports options out of range, wrapping ErrInvalidOptions.
func (o PackageOptions) Validate() error {
	switch {
	case o.MaxControlSize < 0:
		return fmt.Errorf("%w: MaxControlSize %d < 0", ErrInvalidOptions, o.MaxControlSize)
	case o.MaxSize < 0:
		return fmt.Errorf("%w: MaxSize %d < 0", ErrInvalidOptions, o.MaxSize)
	case o.RequireSignature && o.Keys == nil:
		return fmt.Errorf("%w: RequireSignature without Keys", ErrInvalidOptions)
	}
	return nil
}

// Section is a byte range of a package file.
type Section struct {
	Offset int64 `json:"offset"`
	Size   int64 `json:"size"`
}

// Range renders the HTTP Range form with an inclusive end, as apko lock
// files do ("bytes=0-665"); "" for an empty section.
func (s Section) Range() string {
	if s.Size == 0 {
		return ""
	}
	return fmt.Sprintf("bytes=%d-%d", s.Offset, s.Offset+s.Size-1)
}

// PackageSignature is one ".SIGN.<ALG>.<keyname>" entry of a package.
type PackageSignature struct {
	Algorithm SignatureAlgorithm `json:"algorithm"`
	KeyName   string             `json:"key_name"`
	Trusted   bool               `json:"trusted"`
	Verified  bool               `json:"verified"`
}

// Package is the result of one pass over an .apk (APK-FORMAT §2).
type Package struct {
	// Size and SHA256 cover the whole file. The whole-file digest is not
	// verifiable against an index (the signature member is unbound).
	Size   int64    `json:"size"`
	SHA256 [32]byte `json:"-"`
	// SignatureMember is the signature gzip member ({0,0} when unsigned);
	// SignatureSHA1 its SHA-1 (an apko lock file's "sha1-" value).
	SignatureMember Section            `json:"signature_member"`
	SignatureSHA1   [20]byte           `json:"-"`
	Signatures      []PackageSignature `json:"signatures,omitempty"`
	// Control is the control gzip member; Checksum is its Q1 identity,
	// the value an index C: must equal.
	Control  Section  `json:"control"`
	Checksum Checksum `json:"-"`
	// Data is the data part, from its first gzip member to EOF; DataSHA256
	// its SHA-256, which .PKGINFO datahash must equal.
	Data       Section  `json:"data"`
	DataSHA256 [32]byte `json:"-"`
	// Info is the parsed .PKGINFO; ControlFiles names every control entry.
	Info         *PkgInfo `json:"pkginfo"`
	ControlFiles []string `json:"control_files"`
}

// DataHashOK reports whether .PKGINFO has a datahash equal to DataSHA256.
func (p *Package) DataHashOK() bool {
	want, ok := p.Info.DataHashBytes()
	return ok && want == p.DataSHA256
}

// ReadPackage reads an .apk from r in one streaming pass with constant
// memory, whatever its size (APK-FORMAT §2):
//
//   - gzip member 1 is the signature member if its first tar entry is
//     ".SIGN.*", else the control member (unsigned package);
//   - Checksum = Q1 of the raw control member; .PKGINFO is parsed from it;
//   - the data part (raw bytes after the control member, not inflated) is
//     hashed with SHA-256 and compared with datahash;
//   - with opts.Keys, package signatures are verified over the control
//     member digest.
//
// On a structural error it returns (nil, err). On a failed check it returns
// the complete *Package and an error matching ErrNoDataHash,
// ErrDataHashMismatch and/or a signature error (errors.Join).
func ReadPackage(r io.Reader, opts PackageOptions) (*Package, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.MaxControlSize == 0 {
		opts.MaxControlSize = DefaultMaxControlSize
	}
	if opts.MaxSize == 0 {
		opts.MaxSize = DefaultMaxPackageSize
	}
	file := sha256.New()
	sr := newSectionReader(io.LimitReader(r, opts.MaxSize+1), file)
	defer sr.release()
	p := &Package{}

	// Member 1: signature or control.
	m1sha1 := sha1.New() //nolint:gosec // Q1 (APK-FORMAT §2).
	m1sha256 := sha256.New()
	sr.switchTo(file, m1sha1, m1sha256)
	var sigs []rawSig
	info, files, isSig, err := readMember(sr, opts.MaxControlSize, &sigs)
	if err != nil {
		return nil, err
	}
	sr.flush()
	m1 := Section{Offset: 0, Size: sr.pos()}
	var ctlSHA256, ctlSHA512 hash.Hash
	ctlSHA1 := m1sha1
	if isSig {
		p.SignatureMember = m1
		copy(p.SignatureSHA1[:], m1sha1.Sum(nil))
		ctlSHA1 = sha1.New() //nolint:gosec // Q1 (APK-FORMAT §2).
		ws := []hash.Hash{file, ctlSHA1}
		for _, s := range sigs {
			switch {
			case s.alg == SigRSA256 && ctlSHA256 == nil:
				ctlSHA256 = sha256.New()
				ws = append(ws, ctlSHA256)
			case s.alg == SigRSA512 && ctlSHA512 == nil:
				ctlSHA512 = sha512.New()
				ws = append(ws, ctlSHA512)
			}
		}
		sr.switchTo(ws...)
		info, files, _, err = readMember(sr, opts.MaxControlSize, nil)
		if err != nil {
			return nil, err
		}
		sr.flush()
		p.Control = Section{Offset: m1.Size, Size: sr.pos() - m1.Size}
	} else {
		p.Control = m1
	}
	p.Checksum = Checksum{Alg: ChecksumSHA1, Digest: ctlSHA1.Sum(nil)}
	p.Info, p.ControlFiles = info, files

	// Data part: raw bytes to EOF (§2 datahash), hashed in parallel with
	// the whole-file digest.
	data := sha256.New()
	sr.switchTo(file)
	p.Data.Offset = sr.pos()
	n, err := sr.copyRest(data)
	if err != nil {
		return nil, fmt.Errorf("%w: data part: %v", ErrPackageFormat, err)
	}
	p.Data.Size = n
	p.Size = p.Data.Offset + n
	if p.Size > opts.MaxSize {
		return nil, fmt.Errorf("%w: over %d bytes", ErrPackageTooLarge, opts.MaxSize)
	}
	if n < 20 || !sr.dataMagicOK {
		return nil, fmt.Errorf("%w: no gzip data part after the control member", ErrPackageFormat)
	}
	copy(p.DataSHA256[:], data.Sum(nil))
	copy(p.SHA256[:], file.Sum(nil))

	var errs []error
	switch want, ok := info.DataHashBytes(); {
	case !ok:
		errs = append(errs, fmt.Errorf("%w: %s-%s", ErrNoDataHash, info.Name, info.Version))
	case want != p.DataSHA256:
		errs = append(errs, fmt.Errorf("%w: .PKGINFO says %s, data is %x", ErrDataHashMismatch, info.DataHash, p.DataSHA256))
	}
	for _, s := range sigs {
		p.Signatures = append(p.Signatures, PackageSignature{Algorithm: s.alg, KeyName: s.key})
	}
	if opts.Keys != nil {
		if err := p.verifySignatures(sigs, opts, map[SignatureAlgorithm]hash.Hash{SigRSA: ctlSHA1, SigRSA256: ctlSHA256, SigRSA512: ctlSHA512}); err != nil {
			errs = append(errs, err)
		}
	}
	return p, errors.Join(errs...)
}

func (p *Package) verifySignatures(sigs []rawSig, opts PackageOptions, hs map[SignatureAlgorithm]hash.Hash) error {
	if len(sigs) == 0 {
		if opts.RequireSignature {
			return fmt.Errorf("verifying package: %w", ErrNoSignature)
		}
		return nil
	}
	if _, ok := p.Info.DataHashBytes(); !ok {
		// Legacy packages sign control+data; refused already (ErrNoDataHash).
		return nil
	}
	trusted := 0
	for i, s := range sigs {
		pub, ok := opts.Keys.Key(s.key)
		if !ok {
			continue
		}
		trusted++
		p.Signatures[i].Trusted = true
		if err := verifyDigest(pub, s.alg, hs[s.alg].Sum(nil), s.sig); err != nil {
			return fmt.Errorf("verifying package: %w: .SIGN.%s.%s: %v", ErrBadSignature, s.alg, s.key, err)
		}
		p.Signatures[i].Verified = true
	}
	if trusted == 0 {
		return fmt.Errorf("verifying package: %w", ErrUntrustedKey)
	}
	return nil
}

// readMember inflates one gzip member from sr and reads its cut tar. When
// sigs is non-nil and the first entry is ".SIGN.*", it collects signatures
// and reports isSig; otherwise it reads a control member and returns the
// parsed .PKGINFO and the entry names.
func readMember(sr *sectionReader, maxControl int64, sigs *[]rawSig) (info *PkgInfo, files []string, isSig bool, err error) {
	zr, err := gzip.NewReader(sr)
	if err != nil {
		return nil, nil, false, fmt.Errorf("%w: gzip header: %v", ErrPackageFormat, err)
	}
	zr.Multistream(false)
	lim := &boundedReader{r: zr, n: maxControl}
	tr := tar.NewReader(lim)
	fail := func(what string, err error) error {
		if lim.exceeded {
			return fmt.Errorf("%w: %s member over %d bytes", ErrPackageTooLarge, what, maxControl)
		}
		return fmt.Errorf("%w: %s member: %v", ErrPackageFormat, what, err)
	}
	for i := 0; ; i++ {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, false, fail("control", err)
		}
		if i == 0 && sigs != nil && strings.HasPrefix(hdr.Name, ".SIGN.") {
			isSig = true
		}
		if isSig {
			if !strings.HasPrefix(hdr.Name, ".SIGN.") || hdr.Typeflag != tar.TypeReg {
				return nil, nil, false, fmt.Errorf("%w: %q", ErrNonSignatureEntry, truncate(hdr.Name))
			}
			alg, key, err := ParseSignatureName(hdr.Name)
			if err != nil {
				return nil, nil, false, err
			}
			if hdr.Size > MaxSignatureSize {
				return nil, nil, false, fmt.Errorf("%w: %q is %d bytes", ErrSignatureTooLarge, truncate(hdr.Name), hdr.Size)
			}
			if len(*sigs) == maxSignatures {
				return nil, nil, false, fmt.Errorf("%w: more than %d signatures", ErrSignatureTooLarge, maxSignatures)
			}
			b := make([]byte, hdr.Size)
			if _, err := io.ReadFull(tr, b); err != nil {
				return nil, nil, false, fail("signature", err)
			}
			*sigs = append(*sigs, rawSig{alg: alg, key: key, sig: b})
			continue
		}
		if len(files) >= 10000 {
			return nil, nil, false, fmt.Errorf("%w: too many control entries", ErrPackageFormat)
		}
		files = append(files, hdr.Name)
		if hdr.Name != ".PKGINFO" {
			continue
		}
		if info != nil {
			return nil, nil, false, fmt.Errorf("%w: two .PKGINFO entries", ErrPackageFormat)
		}
		if hdr.Typeflag != tar.TypeReg || hdr.Size > MaxPkgInfoSize {
			return nil, nil, false, fmt.Errorf("%w: .PKGINFO is not a regular file under %d bytes", ErrPackageFormat, MaxPkgInfoSize)
		}
		b := make([]byte, hdr.Size)
		if _, err := io.ReadFull(tr, b); err != nil {
			return nil, nil, false, fail("control", err)
		}
		if info, err = ParsePkgInfo(b); err != nil {
			return nil, nil, false, fmt.Errorf("%w: %w", ErrPackageFormat, err)
		}
	}
	// Read to the end of the member so its trailer is checked and sr
	// stands at the next member.
	if n, err := io.Copy(io.Discard, lim); err != nil || n != 0 {
		if err == nil {
			err = fmt.Errorf("%d bytes after the last tar entry", n)
		}
		return nil, nil, false, fail("control", err)
	}
	if isSig {
		if len(*sigs) == 0 {
			return nil, nil, false, fmt.Errorf("%w: empty signature member", ErrPackageFormat)
		}
		if sr.pos() > maxSignatureMember {
			return nil, nil, false, fmt.Errorf("%w: signature member over %d bytes", ErrPackageTooLarge, maxSignatureMember)
		}
		return nil, nil, true, nil
	}
	if info == nil {
		return nil, nil, false, fmt.Errorf("%w: no .PKGINFO in the control member", ErrPackageFormat)
	}
	return info, files, false, nil
}

// ParseControl takes the raw bytes of a control member exactly as they
// appear in the .apk (one gzip member, from 1f 8b through its trailer, as a
// builder may send them) and returns its Q1 identity and .PKGINFO. Trailing
// bytes after the member, a signature member, or a missing .PKGINFO are
// errors (ErrPackageFormat).
func ParseControl(raw []byte) (Checksum, *PkgInfo, error) {
	if len(raw) > DefaultMaxControlSize {
		return Checksum{}, nil, fmt.Errorf("%w: control member is %d bytes", ErrPackageTooLarge, len(raw))
	}
	sr := newSectionReader(bytes.NewReader(raw), nil)
	defer sr.release()
	info, _, _, err := readMember(sr, DefaultMaxControlSize, nil)
	if err != nil {
		return Checksum{}, nil, err
	}
	if sr.pos() != int64(len(raw)) {
		return Checksum{}, nil, fmt.Errorf("%w: %d bytes after the control member", ErrPackageFormat, int64(len(raw))-sr.pos())
	}
	sum := sha1.Sum(raw) //nolint:gosec // Q1 (APK-FORMAT §2).
	return SHA1Checksum(sum), info, nil
}

// sectionReader is a buffered io.ByteReader that counts consumed bytes and
// feeds every consumed byte, in large chunks, to the current section's
// hashes. gzip and flate read through ReadByte, so no byte past a member's
// trailer is consumed (APK-FORMAT §8.1).
type sectionReader struct {
	r           io.Reader
	buf         []byte
	rp, wp      int
	hashed      int // buf[:hashed] has been written to ws
	base        int64
	ws          []hash.Hash
	err         error
	dataMagicOK bool
}

const sectionBufSize = 64 << 10

var bufPool = sync.Pool{New: func() any { b := make([]byte, sectionBufSize); return &b }}

func newSectionReader(r io.Reader, file hash.Hash) *sectionReader {
	bp := bufPool.Get().(*[]byte)
	sr := &sectionReader{r: r, buf: *bp}
	if file != nil {
		sr.ws = []hash.Hash{file}
	}
	return sr
}

func (s *sectionReader) release() {
	if s.buf != nil {
		b := s.buf
		bufPool.Put(&b)
		s.buf = nil
	}
}

func (s *sectionReader) pos() int64 { return s.base + int64(s.rp) }

func (s *sectionReader) flush() {
	if s.rp > s.hashed {
		for _, w := range s.ws {
			w.Write(s.buf[s.hashed:s.rp])
		}
		s.hashed = s.rp
	}
}

// switchTo ends the current section at the current position.
func (s *sectionReader) switchTo(ws ...hash.Hash) {
	s.flush()
	s.ws = ws
}

func (s *sectionReader) fill() error {
	if s.err != nil {
		return s.err
	}
	s.flush()
	s.base += int64(s.rp)
	s.rp, s.wp, s.hashed = 0, 0, 0
	n, err := io.ReadAtLeast(s.r, s.buf, 1)
	s.wp = n
	if err != nil {
		s.err = err
		if n > 0 {
			return nil
		}
		return err
	}
	return nil
}

func (s *sectionReader) ReadByte() (byte, error) {
	if s.rp == s.wp {
		if err := s.fill(); err != nil {
			return 0, err
		}
	}
	c := s.buf[s.rp]
	s.rp++
	return c, nil
}

func (s *sectionReader) Read(p []byte) (int, error) {
	if s.rp == s.wp {
		if err := s.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, s.buf[s.rp:s.wp])
	s.rp += n
	return n, nil
}

// copyRest consumes everything left, writing it to data and to the
// current writers (the whole-file hash); when the rest is large the two
// hashes run in parallel. It also records whether the rest starts with the
// gzip magic.
func (s *sectionReader) copyRest(data hash.Hash) (int64, error) {
	s.flush()
	file := s.ws
	s.ws = nil
	var total int64
	var head [2]byte
	write := func(b []byte) {
		for i := 0; total+int64(i) < 2 && i < len(b); i++ {
			head[total+int64(i)] = b[i]
		}
		total += int64(len(b))
		s.dataMagicOK = total >= 2 && head == [2]byte{0x1f, 0x8b}
	}
	// Whatever is buffered first.
	if s.rp < s.wp {
		b := s.buf[s.rp:s.wp]
		write(b)
		data.Write(b)
		for _, w := range file {
			w.Write(b)
		}
		s.rp = s.wp
		s.hashed = s.rp
	}
	if s.err != nil {
		if errors.Is(s.err, io.EOF) {
			return total, nil
		}
		return total, s.err
	}
	n, err := copyTwo(s.r, data, file, s.buf, write)
	s.base += int64(s.rp) + n
	s.rp, s.wp, s.hashed = 0, 0, 0
	return total, err
}

// parallelThreshold is the data size from which the data and whole-file
// hashes run on two goroutines.
const parallelThreshold = 1 << 20

// copyTwo reads r to EOF, writing every chunk to a and to each of bs. Once
// more than parallelThreshold bytes have gone by, the bs writes move to a
// second goroutine, with a bounded number of chunk buffers in flight.
func copyTwo(r io.Reader, a hash.Hash, bs []hash.Hash, buf []byte, seen func([]byte)) (int64, error) {
	var total int64
	for total < parallelThreshold {
		n, err := r.Read(buf)
		if n > 0 {
			b := buf[:n]
			seen(b)
			a.Write(b)
			for _, w := range bs {
				w.Write(b)
			}
			total += int64(n)
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
	const chunk, inFlight = 1 << 20, 4
	free := make(chan []byte, inFlight)
	for range inFlight {
		free <- make([]byte, chunk)
	}
	work := make(chan []byte, inFlight)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for b := range work {
			for _, w := range bs {
				w.Write(b)
			}
			free <- b[:cap(b)]
		}
	}()
	var rerr error
	for {
		b := <-free
		n, err := io.ReadFull(r, b)
		if n > 0 {
			seen(b[:n])
			a.Write(b[:n])
			total += int64(n)
			work <- b[:n]
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			rerr = err
			break
		}
	}
	close(work)
	<-done
	return total, rerr
}

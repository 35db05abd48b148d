package apk

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"iter"
	"math/rand/v2"
	"strings"
	"unsafe"

	"github.com/klauspost/compress/gzip"
)

// Index format errors. errors.Is(err, ErrIndexFormat) matches all of them
// except the signature errors (ErrSignature and its children) and
// ErrInvalidOptions.
var (
	// ErrIndexFormat is the parent of the structural errors below.
	ErrIndexFormat = errors.New("malformed APKINDEX")
	// ErrUnexpectedMember reports a tar entry in the index part other than
	// one DESCRIPTION and one APKINDEX regular file, or data after the end
	// of the tar archive.
	ErrUnexpectedMember = fmt.Errorf("%w: unexpected tar member", ErrIndexFormat)
	// ErrIndexTooLarge reports a file or decompressed content over the
	// configured limits (gzip bombs).
	ErrIndexTooLarge = fmt.Errorf("%w: too large", ErrIndexFormat)
	// ErrLineTooLong reports an APKINDEX line over the configured limit.
	ErrLineTooLong = fmt.Errorf("%w: line too long", ErrIndexFormat)
	// ErrMissingAPKINDEX reports an index part without an APKINDEX file.
	ErrMissingAPKINDEX = fmt.Errorf("%w: no APKINDEX file", ErrIndexFormat)
	// ErrInvalidOptions reports IndexOptions that fail Validate.
	ErrInvalidOptions = errors.New("invalid options")
)

// Defaults for IndexOptions.
const (
	// DefaultMaxIndexSize bounds the compressed file: 128 MiB.
	DefaultMaxIndexSize = 128 << 20
	// DefaultMaxDecompressedSize bounds the decompressed index part
	// (apko uses 300 MB; a Wolfi-size index is about 76 MB): 512 MiB.
	DefaultMaxDecompressedSize = 512 << 20
	// DefaultMaxLineLength bounds one APKINDEX line (APK-FORMAT §1.3: at
	// least 1 MiB, as apko): 1 MiB.
	DefaultMaxLineLength = 1 << 20

	maxSignatureSegment = 1 << 20  // decompressed bound on gzip member 1
	maxDescriptionSize  = 64 << 10 // DESCRIPTION is a `git describe` string
)

// IndexOptions bound the work done on an untrusted index. The zero value
// means "all defaults". Options are values: copy and change them freely.
type IndexOptions struct {
	// MaxIndexSize bounds the compressed file read by ReadIndex and accepted
	// by LoadIndex. 0 means DefaultMaxIndexSize.
	MaxIndexSize int64
	// MaxDecompressedSize bounds the decompressed tar stream of the index
	// part (headers included). 0 means DefaultMaxDecompressedSize. At most
	// 4 GiB - 1.
	MaxDecompressedSize int64
	// MaxLineLength bounds one APKINDEX line; 0 means DefaultMaxLineLength.
	MaxLineLength int
	// RejectInvalidEntries makes one invalid entry fail the whole index
	// with ErrInvalidEntry. By default an invalid entry (bad or unknown
	// checksum, missing C/P/V/A, unknown upper-case key, conflicting
	// duplicates) is left out of every lookup and reported in
	// Index.Invalid — either way it can never verify anything.
	RejectInvalidEntries bool
}

// Validate reports options out of range, wrapping ErrInvalidOptions.
func (o IndexOptions) Validate() error {
	switch {
	case o.MaxIndexSize < 0:
		return fmt.Errorf("%w: MaxIndexSize %d < 0", ErrInvalidOptions, o.MaxIndexSize)
	case o.MaxDecompressedSize < 0 || o.MaxDecompressedSize > 1<<32-1:
		return fmt.Errorf("%w: MaxDecompressedSize %d not in [0, 4GiB)", ErrInvalidOptions, o.MaxDecompressedSize)
	case o.MaxLineLength < 0:
		return fmt.Errorf("%w: MaxLineLength %d < 0", ErrInvalidOptions, o.MaxLineLength)
	}
	return nil
}

func (o IndexOptions) withDefaults() IndexOptions {
	if o.MaxIndexSize == 0 {
		o.MaxIndexSize = DefaultMaxIndexSize
	}
	if o.MaxDecompressedSize == 0 {
		o.MaxDecompressedSize = DefaultMaxDecompressedSize
	}
	if o.MaxLineLength == 0 {
		o.MaxLineLength = DefaultMaxLineLength
	}
	return o
}

// IndexSignature describes one ".SIGN.<ALG>.<keyname>" entry of an index.
type IndexSignature struct {
	Algorithm SignatureAlgorithm `json:"algorithm"`
	KeyName   string             `json:"key_name"`
	Size      int                `json:"size"`
	// Trusted reports that KeyName is in the keyring.
	Trusted bool `json:"trusted"`
	// Verified reports that the signature verified with that key.
	Verified bool `json:"verified"`
}

// InvalidEntry is an index record left out of the lookups (see
// IndexOptions.RejectInvalidEntries).
type InvalidEntry struct {
	Line    int    // 1-based line of the record's first line in APKINDEX
	Name    string // P, if present
	Version string // V, if present
	Arch    string // A, if present
	Err     error  // wraps ErrInvalidEntry
}

// Index is a verified, parsed APKINDEX.tar.gz. It is immutable and safe for
// concurrent use; lookups allocate only the returned Entry's digest copy.
// Memory: the APKINDEX text (kept whole; entries are slices of it) plus
// about 100 bytes per entry.
type Index struct {
	// SHA256 is the SHA-256 of the whole file as given.
	SHA256 [sha256.Size]byte
	// FileSize is the size of the whole file in bytes.
	FileSize int64
	// Description is the DESCRIPTION file ("" when absent or empty).
	Description string
	// Signatures lists every signature entry, in file order.
	Signatures []IndexSignature
	// Verified is false only for an index from ParseIndexUnverifiedUnsafe.
	Verified bool
	// TextSize is the size of the APKINDEX text in bytes.
	TextSize int64
	// Invalid lists records left out of the lookups.
	Invalid []InvalidEntry

	text   string
	recs   []record
	wide   map[int32][sha256.Size]byte // full digests of SHA-256 entries
	archs  []string
	seed   uint64
	byNVA  table // hash of (name, version, arch) -> first record
	byName table // hash of name -> first record
	bySum  table // first 8 bytes of the digest -> first record
}

// record is the compact per-entry form kept by Index.
type record struct {
	off, end uint32 // record text is text[off:end]
	nameOff  uint32
	verOff   uint32
	nameLen  uint16
	verLen   uint16
	arch     uint16
	alg      ChecksumAlgorithm
	sum      [20]byte // SHA-1 digest, or the first 20 bytes of a SHA-256 one
	nextNVA  int32    // next record with the same NVA hash, or -1
	nextName int32    // next record with the same name, or -1
	nextSum  int32    // next record with the same sum prefix, or -1
}

// VerifiedKeys returns the names of the keys whose signatures verified.
func (x *Index) VerifiedKeys() []string {
	var out []string
	for _, s := range x.Signatures {
		if s.Verified {
			out = append(out, s.KeyName)
		}
	}
	return out
}

// Algorithm returns the algorithm of the first verified signature, or
// SigUnknown for an unverified index.
func (x *Index) Algorithm() SignatureAlgorithm {
	for _, s := range x.Signatures {
		if s.Verified {
			return s.Algorithm
		}
	}
	return SigUnknown
}

// Len returns the number of valid entries.
func (x *Index) Len() int { return len(x.recs) }

// Entry returns the i-th valid entry in file order; it panics if i is out
// of range.
func (x *Index) Entry(i int) Entry { return x.entry(int32(i)) }

// All iterates over the valid entries in file order.
func (x *Index) All() iter.Seq[Entry] {
	return func(yield func(Entry) bool) {
		for i := range x.recs {
			if !yield(x.entry(int32(i))) {
				return
			}
		}
	}
}

// Identity is what names an index entry: package name, version, the A:
// arch and the C: checksum.
type Identity struct {
	Name, Version, Arch string
	Checksum            Checksum
}

// Identities iterates over the valid entries' identities in file order
// without materialising their other fields (what comparing two indexes
// needs).
func (x *Index) Identities() iter.Seq[Identity] {
	return func(yield func(Identity) bool) {
		for i := range x.recs {
			r := &x.recs[i]
			if !yield(Identity{Name: x.str(r.nameOff, r.nameLen), Version: x.str(r.verOff, r.verLen), Arch: x.archs[r.arch], Checksum: x.checksumAt(int32(i))}) {
				return
			}
		}
	}
}

// Lookup returns the entry for (name, version, arch). Arch is the index's
// A: value (rewritten for noarch packages, APK-FORMAT §8.6).
func (x *Index) Lookup(name, version, arch string) (Entry, bool) {
	if i := x.find(name, version, arch); i >= 0 {
		return x.entry(i), true
	}
	return Entry{}, false
}

// ChecksumOf returns the C: of (name, version, arch) without
// materialising the whole entry: the hot path of verifying a claim.
func (x *Index) ChecksumOf(name, version, arch string) (Checksum, bool) {
	i := x.find(name, version, arch)
	if i < 0 {
		return Checksum{}, false
	}
	return x.checksumAt(i), true
}

// checksumAt rebuilds record i's C: from the compact record (and, for
// SHA-256 checksums, the full digest kept beside it).
func (x *Index) checksumAt(i int32) Checksum {
	r := &x.recs[i]
	d := digest{alg: r.alg}
	copy(d.sum[:], r.sum[:])
	if r.alg == ChecksumSHA256 {
		d.sum = x.wide[i]
	}
	return d.checksum()
}

// Attested returns what an attestation records of (name, version, arch) —
// its C:, L: (license) and o: (origin) — reading only those two lines of
// the record instead of materialising the whole entry. ok is false when the
// index does not list it.
func (x *Index) Attested(name, version, arch string) (c Checksum, license, origin string, ok bool) {
	i := x.find(name, version, arch)
	if i < 0 {
		return Checksum{}, "", "", false
	}
	r := &x.recs[i]
	rec := x.text[r.off:r.end]
	return x.checksumAt(i), fieldValue(rec, "L:"), fieldValue(rec, "o:"), true
}

// fieldValue returns the value of the line of rec that starts with key
// ("L:"), or "". Records were validated at load: keys are unique.
func fieldValue(rec, key string) string {
	var i int
	if strings.HasPrefix(rec, key) {
		i = 0
	} else if i = strings.Index(rec, "\n"+key); i < 0 {
		return ""
	} else {
		i++
	}
	v := rec[i+len(key):]
	if nl := strings.IndexByte(v, '\n'); nl >= 0 {
		v = v[:nl]
	}
	return v
}

// Has reports whether the index lists (name, version, arch) with exactly
// checksum c, without materialising the entry.
func (x *Index) Has(name, version, arch string, c Checksum) bool {
	i := x.find(name, version, arch)
	return i >= 0 && x.sumEqual(i, c)
}

func (x *Index) find(name, version, arch string) int32 {
	if x == nil || len(x.recs) == 0 {
		return -1
	}
	aid := -1
	for i, a := range x.archs {
		if a == arch {
			aid = i
			break
		}
	}
	if aid < 0 {
		return -1
	}
	h := x.nvaHash(name, version, uint16(aid))
	for pos := h & x.byNVA.mask; ; pos = (pos + 1) & x.byNVA.mask {
		s := x.byNVA.slots[pos]
		if s == 0 {
			return -1
		}
		if uint32(s>>32) != uint32(h>>32) {
			continue
		}
		i := int32(uint32(s)) - 1
		r := &x.recs[i]
		if r.arch == uint16(aid) && x.str(r.nameOff, r.nameLen) == name && x.str(r.verOff, r.verLen) == version {
			return i
		}
	}
}

func (x *Index) sumEqual(i int32, c Checksum) bool {
	r := &x.recs[i]
	if r.alg != c.Alg || len(c.Digest) != c.Alg.Size() {
		return false
	}
	if r.alg == ChecksumSHA256 {
		w := x.wide[i]
		return bytes.Equal(w[:], c.Digest)
	}
	return bytes.Equal(r.sum[:], c.Digest)
}

// LookupChecksum returns the first entry whose C: equals c (same algorithm
// and digest).
func (x *Index) LookupChecksum(c Checksum) (Entry, bool) {
	if x == nil || len(x.recs) == 0 || c.IsZero() || len(c.Digest) != c.Alg.Size() {
		return Entry{}, false
	}
	var k [20]byte
	copy(k[:], c.Digest)
	h := x.sumHash(&k)
	for pos := h & x.bySum.mask; ; pos = (pos + 1) & x.bySum.mask {
		s := x.bySum.slots[pos]
		if s == 0 {
			return Entry{}, false
		}
		if uint32(s>>32) != uint32(h>>32) {
			continue
		}
		i := int32(uint32(s)) - 1
		if x.recs[i].sum != k {
			continue
		}
		for ; i >= 0; i = x.recs[i].nextSum {
			if x.sumEqual(i, c) {
				return x.entry(i), true
			}
		}
		return Entry{}, false
	}
}

// Versions returns every entry named name, in file order (Wolfi keeps many
// versions of one name, APK-FORMAT §1.3).
func (x *Index) Versions(name string) []Entry {
	if x == nil || len(x.recs) == 0 {
		return nil
	}
	h := x.strHash(x.seed, name)
	for pos := h & x.byName.mask; ; pos = (pos + 1) & x.byName.mask {
		s := x.byName.slots[pos]
		if s == 0 {
			return nil
		}
		if uint32(s>>32) != uint32(h>>32) {
			continue
		}
		i := int32(uint32(s)) - 1
		if r := &x.recs[i]; x.str(r.nameOff, r.nameLen) != name {
			continue
		}
		var out []Entry
		for ; i >= 0; i = x.recs[i].nextName {
			out = append(out, x.entry(i))
		}
		return out
	}
}

func (x *Index) str(off uint32, n uint16) string { return x.text[off : off+uint32(n)] }

// table is an open-addressing hash table of record indexes: each slot is
// (32-bit hash tag << 32 | record index + 1), 0 when empty; linear probing,
// load factor at most 1/2. Records with equal keys are chained through the
// record's next* fields, so a slot holds the first of them.
type table struct {
	slots []uint64
	mask  uint64
}

func newTable(n int) table {
	size := 16
	for size < 2*n {
		size <<= 1
	}
	return table{slots: make([]uint64, size), mask: uint64(size - 1)}
}

// mix is a 64-bit finaliser (from SplitMix64).
func mix(h uint64) uint64 {
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}

func (x *Index) strHash(h uint64, s string) uint64 {
	for len(s) >= 8 {
		h = (h ^ (uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
			uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56)) * 0x9e3779b97f4a7c15
		h ^= h >> 29
		s = s[8:]
	}
	var t uint64
	for i := 0; i < len(s); i++ {
		t |= uint64(s[i]) << (8 * i)
	}
	h = (h ^ t ^ uint64(len(s))<<56) * 0x9e3779b97f4a7c15
	return mix(h)
}

func (x *Index) nvaHash(name, version string, arch uint16) uint64 {
	return x.strHash(x.strHash(x.seed^uint64(arch), name), version)
}

func (x *Index) sumHash(sum *[20]byte) uint64 {
	return mix(x.seed ^ (uint64(sum[0]) | uint64(sum[1])<<8 | uint64(sum[2])<<16 | uint64(sum[3])<<24 |
		uint64(sum[4])<<32 | uint64(sum[5])<<40 | uint64(sum[6])<<48 | uint64(sum[7])<<56))
}

// entry materialises record i. Records were validated at load time, so
// re-parsing cannot fail.
func (x *Index) entry(i int32) Entry {
	r := &x.recs[i]
	var e Entry
	var rawC string
	var seen uint32
	rec := x.text[r.off:r.end]
	for len(rec) > 0 {
		line := rec
		if nl := strings.IndexByte(rec, '\n'); nl >= 0 {
			line, rec = rec[:nl], rec[nl+1:]
		} else {
			rec = ""
		}
		if len(line) >= 2 {
			_, _ = setField(&e, &rawC, &seen, line[0], line[2:])
		}
	}
	e.Checksum = x.checksumAt(i)
	return e
}

// ReadIndex reads an APKINDEX.tar.gz (at most opts.MaxIndexSize bytes) and
// calls LoadIndex.
func ReadIndex(r io.Reader, keys *Keyring, opts IndexOptions) (*Index, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	o := opts.withDefaults()
	data, err := io.ReadAll(io.LimitReader(r, o.MaxIndexSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading APKINDEX: %w", err)
	}
	return LoadIndex(data, keys, opts)
}

// LoadIndex verifies and parses a signed APKINDEX.tar.gz held in data
// (APK-FORMAT §1). Order of work, each step refusing with its own error:
//
//  1. split gzip member 1 (the signature segment, §1.1) and read its
//     ".SIGN.<ALG>.<keyname>" entries; anything else there is refused;
//  2. verify, before anything else is parsed, every signature whose key
//     name is in keys over the raw bytes after member 1 (§1.2). At least
//     one must exist (else ErrUntrustedKey) and every one must verify (else
//     ErrBadSignature); signatures by unknown keys are ignored;
//  3. inflate the index part with bounded size, accepting only one
//     DESCRIPTION and one APKINDEX regular file;
//  4. parse the APKINDEX records (§1.3).
//
// data must not be modified afterwards only if the caller wants the
// returned Index to stay valid — the Index does not keep data.
func LoadIndex(data []byte, keys *Keyring, opts IndexOptions) (*Index, error) {
	return loadIndex(data, keys, opts, true)
}

// ParseIndexUnverifiedUnsafe parses an index WITHOUT checking any
// signature, for inspection tools only. A missing signature member is
// accepted; every other structural check of LoadIndex applies. The result
// has Verified == false and must never be used to verify a package.
func ParseIndexUnverifiedUnsafe(data []byte, opts IndexOptions) (*Index, error) {
	return loadIndex(data, nil, opts, false)
}

func loadIndex(data []byte, keys *Keyring, opts IndexOptions, verify bool) (*Index, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	o := opts.withDefaults()
	if int64(len(data)) > o.MaxIndexSize {
		return nil, fmt.Errorf("parsing APKINDEX: %w: file over %d bytes", ErrIndexTooLarge, o.MaxIndexSize)
	}
	x := &Index{SHA256: sha256.Sum256(data), FileSize: int64(len(data)), Verified: verify}

	// Step 1: the signature segment (§1.1).
	sigs, rest, err := splitSignatures(data, !verify)
	if err != nil {
		return nil, fmt.Errorf("parsing APKINDEX: %w", err)
	}
	if len(rest) == 0 {
		return nil, fmt.Errorf("parsing APKINDEX: %w: nothing after the signature member", ErrIndexFormat)
	}

	// Step 2: verify over the raw compressed bytes after member 1 (§1.2).
	x.Signatures = make([]IndexSignature, len(sigs))
	for i, s := range sigs {
		x.Signatures[i] = IndexSignature{Algorithm: s.alg, KeyName: s.key, Size: len(s.sig)}
	}
	if verify {
		if err := verifySignatures(x.Signatures, sigs, rest, keys); err != nil {
			return nil, fmt.Errorf("verifying APKINDEX: %w", err)
		}
	}

	// Step 3: inflate the index part.
	desc, text, err := readIndexPart(rest, o)
	if err != nil {
		return nil, fmt.Errorf("parsing APKINDEX: %w", err)
	}
	x.Description = strings.TrimRight(desc, "\n")
	x.TextSize = int64(len(text))

	// Step 4: the records.
	if err := x.parseText(text, o); err != nil {
		return nil, fmt.Errorf("parsing APKINDEX: %w", err)
	}
	return x, nil
}

type rawSig struct {
	alg SignatureAlgorithm
	key string
	sig []byte
}

// splitSignatures reads gzip member 1 of data as a cut tar of .SIGN
// entries and returns them with the bytes after member 1. With
// allowUnsigned, a first member that is not a signature segment yields no
// signatures and rest == data.
func splitSignatures(data []byte, allowUnsigned bool) ([]rawSig, []byte, error) {
	br := bytes.NewReader(data)
	zr, err := gzip.NewReader(br)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: gzip member 1: %v", ErrIndexFormat, err)
	}
	zr.Multistream(false)
	lim := &boundedReader{r: zr, n: maxSignatureSegment}
	tr := tar.NewReader(lim)
	var sigs []rawSig
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if lim.exceeded {
				return nil, nil, fmt.Errorf("%w: signature member over %d bytes", ErrIndexTooLarge, maxSignatureSegment)
			}
			return nil, nil, fmt.Errorf("%w: signature member: %v", ErrIndexFormat, err)
		}
		if !strings.HasPrefix(hdr.Name, ".SIGN.") {
			if len(sigs) == 0 {
				if allowUnsigned {
					return nil, data, nil
				}
				return nil, nil, fmt.Errorf("%w: first entry is %q", ErrNoSignature, truncate(hdr.Name))
			}
			return nil, nil, fmt.Errorf("%w: %q", ErrNonSignatureEntry, truncate(hdr.Name))
		}
		if hdr.Typeflag != tar.TypeReg {
			return nil, nil, fmt.Errorf("%w: %q is not a regular file", ErrNonSignatureEntry, truncate(hdr.Name))
		}
		alg, key, err := ParseSignatureName(hdr.Name)
		if err != nil {
			return nil, nil, err
		}
		if hdr.Size > MaxSignatureSize {
			return nil, nil, fmt.Errorf("%w: %q is %d bytes", ErrSignatureTooLarge, truncate(hdr.Name), hdr.Size)
		}
		if len(sigs) == maxSignatures {
			return nil, nil, fmt.Errorf("%w: more than %d signatures", ErrSignatureTooLarge, maxSignatures)
		}
		sig := make([]byte, hdr.Size)
		if _, err := io.ReadFull(tr, sig); err != nil {
			return nil, nil, fmt.Errorf("%w: reading %q: %v", ErrIndexFormat, truncate(hdr.Name), err)
		}
		sigs = append(sigs, rawSig{alg: alg, key: key, sig: sig})
	}
	if len(sigs) == 0 {
		if allowUnsigned {
			return nil, data, nil
		}
		return nil, nil, fmt.Errorf("%w: empty signature member", ErrNoSignature)
	}
	// Finish member 1 so the gzip trailer (CRC, size) is checked and the
	// reader sits exactly at the start of member 2 (§8.1).
	if n, err := io.Copy(io.Discard, lim); err != nil || n != 0 {
		if lim.exceeded {
			return nil, nil, fmt.Errorf("%w: signature member over %d bytes", ErrIndexTooLarge, maxSignatureSegment)
		}
		if err == nil {
			err = fmt.Errorf("%d bytes after the last entry", n)
		}
		return nil, nil, fmt.Errorf("%w: signature member: %v", ErrNonSignatureEntry, err)
	}
	return sigs, data[len(data)-br.Len():], nil
}

// verifySignatures applies the policy of LoadIndex step 2 and marks infos.
func verifySignatures(infos []IndexSignature, sigs []rawSig, msg []byte, keys *Keyring) error {
	digests := map[SignatureAlgorithm][]byte{}
	trusted := 0
	for i, s := range sigs {
		pub, ok := keys.Key(s.key)
		if !ok {
			continue
		}
		trusted++
		infos[i].Trusted = true
		d, ok := digests[s.alg]
		if !ok {
			h := newHash(s.alg)
			h.Write(msg)
			d = h.Sum(nil)
			digests[s.alg] = d
		}
		if err := verifyDigest(pub, s.alg, d, s.sig); err != nil {
			return fmt.Errorf("%w: .SIGN.%s.%s: %v", ErrBadSignature, s.alg, s.key, err)
		}
		infos[i].Verified = true
	}
	if trusted == 0 {
		names := make([]string, len(sigs))
		for i, s := range sigs {
			names[i] = s.key
		}
		return fmt.Errorf("%w: signed by %s", ErrUntrustedKey, truncate(strings.Join(names, ", ")))
	}
	return nil
}

// readIndexPart inflates the bytes after member 1 and returns DESCRIPTION
// and APKINDEX. The APKINDEX buffer is allocated once at its tar size and
// turned into a string without copying; nothing else refers to it.
func readIndexPart(rest []byte, o IndexOptions) (desc, text string, err error) {
	zr, err := gzip.NewReader(bytes.NewReader(rest))
	if err != nil {
		return "", "", fmt.Errorf("%w: index part: %v", ErrIndexFormat, err)
	}
	lim := &boundedReader{r: zr, n: o.MaxDecompressedSize}
	tr := tar.NewReader(lim)
	var haveDesc, haveIndex bool
	tooLarge := func() error {
		return fmt.Errorf("%w: decompressed index over %d bytes", ErrIndexTooLarge, o.MaxDecompressedSize)
	}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if lim.exceeded {
				return "", "", tooLarge()
			}
			return "", "", fmt.Errorf("%w: index part: %v", ErrIndexFormat, err)
		}
		if hdr.Typeflag != tar.TypeReg {
			return "", "", fmt.Errorf("%w: %q (type %q)", ErrUnexpectedMember, truncate(hdr.Name), hdr.Typeflag)
		}
		switch {
		case hdr.Name == "DESCRIPTION" && !haveDesc:
			haveDesc = true
			if hdr.Size > maxDescriptionSize {
				return "", "", fmt.Errorf("%w: DESCRIPTION is %d bytes", ErrIndexTooLarge, hdr.Size)
			}
			b := make([]byte, hdr.Size)
			if _, err := io.ReadFull(tr, b); err != nil {
				if lim.exceeded {
					return "", "", tooLarge()
				}
				return "", "", fmt.Errorf("%w: DESCRIPTION: %v", ErrIndexFormat, err)
			}
			desc = string(b)
		case hdr.Name == "APKINDEX" && !haveIndex:
			haveIndex = true
			if hdr.Size > lim.n {
				return "", "", tooLarge()
			}
			b := make([]byte, hdr.Size)
			if _, err := io.ReadFull(tr, b); err != nil {
				if lim.exceeded {
					return "", "", tooLarge()
				}
				return "", "", fmt.Errorf("%w: APKINDEX: %v", ErrIndexFormat, err)
			}
			text = unsafe.String(unsafe.SliceData(b), len(b))
		default:
			return "", "", fmt.Errorf("%w: %q", ErrUnexpectedMember, truncate(hdr.Name))
		}
	}
	if !haveIndex {
		return "", "", ErrMissingAPKINDEX
	}
	// After the end-of-archive blocks only zero padding may follow; this
	// also reads to the end of the gzip stream, checking its trailer.
	var buf [4096]byte
	for {
		n, err := lim.Read(buf[:])
		for _, c := range buf[:n] {
			if c != 0 {
				return "", "", fmt.Errorf("%w: data after the end of the archive", ErrUnexpectedMember)
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if lim.exceeded {
				return "", "", tooLarge()
			}
			return "", "", fmt.Errorf("%w: index part: %v", ErrIndexFormat, err)
		}
	}
	return desc, text, nil
}

// boundedReader returns errTooLarge once more than n bytes are read.
type boundedReader struct {
	r        io.Reader
	n        int64
	exceeded bool
}

var errTooLarge = errors.New("size limit exceeded")

func (b *boundedReader) Read(p []byte) (int, error) {
	if b.exceeded {
		return 0, errTooLarge
	}
	if b.n <= 0 {
		// Probe: is there more than the limit?
		var one [1]byte
		for {
			n, err := b.r.Read(one[:])
			if n > 0 {
				b.exceeded = true
				return 0, errTooLarge
			}
			if err != nil {
				return 0, err
			}
		}
	}
	if int64(len(p)) > b.n {
		p = p[:b.n]
	}
	n, err := b.r.Read(p)
	b.n -= int64(n)
	return n, err
}

// parseText splits the APKINDEX text into records (§1.3) and builds the
// lookup maps.
func (x *Index) parseText(text string, o IndexOptions) error {
	x.text = text
	x.recs = make([]record, 0, len(text)/320+1)
	archIDs := map[string]uint16{}
	pos, lineNo := 0, 1
	for pos < len(text) {
		// Skip blank lines between records.
		if text[pos] == '\n' {
			pos++
			lineNo++
			continue
		}
		start, startLine := pos, lineNo
		var (
			e    Entry
			rawC string
			seen uint32
			rerr error
		)
		for pos < len(text) {
			nl := strings.IndexByte(text[pos:], '\n')
			var line string
			next := len(text)
			if nl < 0 {
				line = text[pos:]
			} else {
				line = text[pos : pos+nl]
				next = pos + nl + 1
			}
			if len(line) > o.MaxLineLength {
				return fmt.Errorf("%w: line %d is %d bytes (limit %d)", ErrLineTooLong, lineNo, len(line), o.MaxLineLength)
			}
			if len(line) == 0 {
				break
			}
			pos = next
			lineNo++
			if rerr != nil {
				continue
			}
			if len(line) < 2 || line[1] != ':' {
				rerr = fmt.Errorf("%w: line %d: %q", ErrFieldSyntax, lineNo-1, truncate(line))
				continue
			}
			known, err := setField(&e, &rawC, &seen, line[0], line[2:])
			switch {
			case err != nil:
				rerr = err
			case !known && line[0] >= 'A' && line[0] <= 'Z':
				rerr = fmt.Errorf("%w: %c", ErrUnknownField, line[0])
			}
		}
		end := pos
		if end > start && text[end-1] == '\n' {
			end--
		}
		var d digest
		if rerr == nil {
			rerr = checkRequired(seen)
		}
		if rerr == nil {
			rerr = parseDigest(rawC, &d)
		}
		if rerr == nil && (len(e.Name) > 0xffff || len(e.Version) > 0xffff) {
			rerr = fmt.Errorf("%w: name or version over 64 KiB", ErrFieldSyntax)
		}
		if rerr != nil {
			if o.RejectInvalidEntries {
				return fmt.Errorf("entry at line %d: %w", startLine, rerr)
			}
			x.Invalid = append(x.Invalid, InvalidEntry{Line: startLine, Name: e.Name, Version: e.Version, Arch: e.Arch, Err: rerr})
			continue
		}
		aid, ok := archIDs[e.Arch]
		if !ok {
			if len(x.archs) == 0xffff {
				return fmt.Errorf("%w: too many distinct architectures", ErrIndexFormat)
			}
			aid = uint16(len(x.archs))
			x.archs = append(x.archs, e.Arch)
			archIDs[e.Arch] = aid
		}
		r := record{
			off: uint32(start), end: uint32(end),
			nameOff: uint32(offsetIn(text, e.Name)), nameLen: uint16(len(e.Name)),
			verOff: uint32(offsetIn(text, e.Version)), verLen: uint16(len(e.Version)),
			arch: aid, alg: d.alg,
		}
		copy(r.sum[:], d.sum[:20])
		if d.alg == ChecksumSHA256 {
			if x.wide == nil {
				x.wide = map[int32][sha256.Size]byte{}
			}
			x.wide[int32(len(x.recs))] = d.sum
		}
		x.recs = append(x.recs, r)
	}
	return x.buildMaps(o)
}

// offsetIn returns the offset of sub, a substring of s, within s.
func offsetIn(s, sub string) int {
	return int(uintptr(unsafe.Pointer(unsafe.StringData(sub))) - uintptr(unsafe.Pointer(unsafe.StringData(s))))
}

// buildMaps fills the lookup tables, walking backwards so chains run in
// file order. Entries that list one (name, version, arch) with different
// checksums are all removed (fail closed) and reported.
func (x *Index) buildMaps(o IndexOptions) error {
	x.seed = rand.Uint64()
	n := len(x.recs)
	x.byNVA, x.byName, x.bySum = newTable(n), newTable(n), newTable(n)
	var conflicts map[int32]bool
	for i := int32(n - 1); i >= 0; i-- {
		r := &x.recs[i]
		r.nextNVA, r.nextName, r.nextSum = -1, -1, -1
		name, ver := x.str(r.nameOff, r.nameLen), x.str(r.verOff, r.verLen)

		// (name, version, arch)
		h := x.nvaHash(name, ver, r.arch)
		for pos := h & x.byNVA.mask; ; pos = (pos + 1) & x.byNVA.mask {
			s := x.byNVA.slots[pos]
			if s == 0 {
				x.byNVA.slots[pos] = h>>32<<32 | uint64(i+1)
				break
			}
			j := int32(uint32(s)) - 1
			if o := &x.recs[j]; uint32(s>>32) != uint32(h>>32) || o.arch != r.arch ||
				x.str(o.nameOff, o.nameLen) != name || x.str(o.verOff, o.verLen) != ver {
				continue
			}
			for k := j; k >= 0; k = x.recs[k].nextNVA {
				if o := &x.recs[k]; o.alg != r.alg || o.sum != r.sum || x.wide[k] != x.wide[i] {
					if conflicts == nil {
						conflicts = map[int32]bool{}
					}
					conflicts[i], conflicts[k] = true, true
				}
			}
			r.nextNVA = j
			x.byNVA.slots[pos] = h>>32<<32 | uint64(i+1)
			break
		}

		// name
		h = x.strHash(x.seed, name)
		for pos := h & x.byName.mask; ; pos = (pos + 1) & x.byName.mask {
			s := x.byName.slots[pos]
			if s == 0 {
				x.byName.slots[pos] = h>>32<<32 | uint64(i+1)
				break
			}
			j := int32(uint32(s)) - 1
			if o := &x.recs[j]; uint32(s>>32) != uint32(h>>32) || x.str(o.nameOff, o.nameLen) != name {
				continue
			}
			r.nextName = j
			x.byName.slots[pos] = h>>32<<32 | uint64(i+1)
			break
		}

		// checksum (the first 20 bytes; SHA-256 entries are told apart on lookup)
		h = x.sumHash(&r.sum)
		for pos := h & x.bySum.mask; ; pos = (pos + 1) & x.bySum.mask {
			s := x.bySum.slots[pos]
			if s == 0 {
				x.bySum.slots[pos] = h>>32<<32 | uint64(i+1)
				break
			}
			j := int32(uint32(s)) - 1
			if uint32(s>>32) != uint32(h>>32) || x.recs[j].sum != r.sum {
				continue
			}
			r.nextSum = j
			x.bySum.slots[pos] = h>>32<<32 | uint64(i+1)
			break
		}
		if n > 1<<31-2 {
			return fmt.Errorf("%w: too many entries", ErrIndexFormat)
		}
	}
	if conflicts == nil {
		return nil
	}
	if o.RejectInvalidEntries {
		return fmt.Errorf("%w: %d entries", ErrConflictingEntries, len(conflicts))
	}
	// Rare path: drop the conflicting records and rebuild.
	keep := x.recs[:0:0]
	wide := map[int32][sha256.Size]byte{}
	for i := range x.recs {
		r := x.recs[i]
		if conflicts[int32(i)] {
			x.Invalid = append(x.Invalid, InvalidEntry{
				Line: 1 + strings.Count(x.text[:r.off], "\n"),
				Name: x.str(r.nameOff, r.nameLen), Version: x.str(r.verOff, r.verLen), Arch: x.archs[r.arch],
				Err: ErrConflictingEntries,
			})
			continue
		}
		if r.alg == ChecksumSHA256 {
			wide[int32(len(keep))] = x.wide[int32(i)]
		}
		keep = append(keep, r)
	}
	x.recs, x.wide = keep, wide
	return x.buildMaps(o)
}

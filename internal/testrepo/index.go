package testrepo

import (
	"archive/tar"
	"bytes"
	"crypto/sha1" //nolint:gosec // Q1 identities are SHA-1.
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/vouchdev/vouch/apk"
)

// IndexDefect selects what is wrong with a built index.
type IndexDefect int

const (
	// IdxOK builds a well-formed signed index.
	IdxOK IndexDefect = iota
	// IdxUnsigned leaves out the signature member (apk.ErrNoSignature).
	IdxUnsigned
	// IdxBitFlip flips one bit in the signed region (apk.ErrBadSignature).
	IdxBitFlip
	// IdxTruncated cuts the last 100 bytes (apk.ErrBadSignature).
	IdxTruncated
	// IdxWrongKey signs with another key under the first signer's name
	// (apk.ErrBadSignature when that name is trusted).
	IdxWrongKey
	// IdxDSA adds a ".SIGN.DSA.<name>" entry
	// (apk.ErrUnknownSignatureAlgorithm).
	IdxDSA
	// IdxSignatureTooLarge adds a 70 KiB signature entry
	// (apk.ErrSignatureTooLarge).
	IdxSignatureTooLarge
	// IdxNonSignatureEntry smuggles an APKINDEX file into the signature
	// member (apk.ErrNonSignatureEntry).
	IdxNonSignatureEntry
	// IdxExtraMember adds an "install.sh" file to the signed index part
	// (apk.ErrUnexpectedMember).
	IdxExtraMember
	// IdxGzipBomb pads APKINDEX with BombSize newlines, which compress to
	// almost nothing (apk.ErrIndexTooLarge under a smaller limit).
	IdxGzipBomb
	// IdxLongLine adds an entry with a 2 MiB T: line (apk.ErrLineTooLong).
	IdxLongLine
	// IdxBadChecksumEntry adds an entry whose C: is bare MD5 hex; it is
	// reported in apk.Index.Invalid (or fails with RejectInvalidEntries).
	IdxBadChecksumEntry
	// IdxNoAPKINDEX writes only DESCRIPTION (apk.ErrMissingAPKINDEX).
	IdxNoAPKINDEX
	// IdxSignatureOnly writes the signature member and nothing after it.
	IdxSignatureOnly
)

// Signer signs an index: Alg defaults to apk.SigRSA256 and Name (the
// <keyname> in ".SIGN.<ALG>.<keyname>") to Key.Name.
type Signer struct {
	Key  *Key
	Alg  apk.SignatureAlgorithm
	Name string
}

// Index describes an APKINDEX.tar.gz to build.
type Index struct {
	// Description is the DESCRIPTION file (Alpine: `git describe`;
	// Wolfi: empty). NoDescription leaves the file out (as pmOS);
	// DescriptionLast writes it after APKINDEX (as melange).
	Description     string
	NoDescription   bool
	DescriptionLast bool
	Entries         []apk.Entry
	Signers         []Signer
	Defect          IndexDefect
	// BombSize is the padding of IdxGzipBomb; 0 means 64 MiB.
	BombSize int64
}

// Text returns the APKINDEX text: records in apk-tools field order, each
// followed by a blank line.
func (ix Index) Text() []byte {
	b := make([]byte, 0, 420*len(ix.Entries)+64)
	for i := range ix.Entries {
		b = ix.Entries[i].AppendRecord(b)
		b = append(b, '\n')
	}
	return b
}

// Build assembles the index (APK-FORMAT §1.1): a gzip member holding the
// signature entries (cut tar) followed by a gzip member holding
// DESCRIPTION and APKINDEX (with end-of-archive blocks); every signature
// covers the raw bytes of the second member (§1.2).
func (ix Index) Build() ([]byte, error) {
	text := ix.Text()
	switch ix.Defect {
	case IdxGzipBomb:
		n := ix.BombSize
		if n == 0 {
			n = 64 << 20
		}
		text = append(text, bytes.Repeat([]byte{'\n'}, int(n))...)
	case IdxLongLine:
		e := apk.Entry{Checksum: apk.SHA1Checksum(sha1.Sum([]byte("long"))), Name: "long-line", Version: "1-r0", Arch: "x86_64", Description: strings.Repeat("x", 2<<20)}
		text = append(e.AppendRecord(text), '\n')
	case IdxBadChecksumEntry:
		text = append(text, "C:0123456789abcdef0123456789abcdef\nP:md5-entry\nV:1-r0\nA:x86_64\nS:1\nI:1\n\n"...)
	}
	var files []tarFile
	if !ix.NoDescription && !ix.DescriptionLast {
		files = append(files, tarFile{name: "DESCRIPTION", data: []byte(ix.Description)})
	}
	if ix.Defect != IdxNoAPKINDEX {
		files = append(files, tarFile{name: "APKINDEX", data: text})
	}
	if !ix.NoDescription && ix.DescriptionLast {
		files = append(files, tarFile{name: "DESCRIPTION", data: []byte(ix.Description)})
	}
	if ix.Defect == IdxExtraMember {
		files = append(files, tarFile{name: "install.sh", data: []byte("#!/bin/sh\necho pwned\n")})
	}
	part, err := buildTar(files)
	if err != nil {
		return nil, err
	}
	if ix.Defect == IdxUnsigned {
		return part, nil
	}
	var sigs []tarFile
	for i, s := range ix.Signers {
		alg := s.Alg
		if alg == 0 {
			alg = apk.SigRSA256
		}
		name := s.Name
		if name == "" {
			name = s.Key.Name
		}
		key := s.Key
		if i == 0 && ix.Defect == IdxWrongKey {
			if key, err = CachedKey("wrong-"+name, 2048); err != nil {
				return nil, err
			}
		}
		sig, err := key.sign(alg, part)
		if err != nil {
			return nil, err
		}
		sigs = append(sigs, tarFile{name: ".SIGN." + alg.String() + "." + name, data: sig})
	}
	switch ix.Defect {
	case IdxDSA:
		sigs = append(sigs, tarFile{name: ".SIGN.DSA.legacy.rsa.pub", data: bytes.Repeat([]byte{0x30}, 46)})
	case IdxSignatureTooLarge:
		sigs = append(sigs, tarFile{name: ".SIGN.RSA256.huge.rsa.pub", data: make([]byte, 70<<10)})
	case IdxNonSignatureEntry:
		sigs = append(sigs, tarFile{name: "APKINDEX", data: []byte("C:Q1LLq2qDNrS/qRnhxQ3hsY/sHbQnc=\nP:evil\nV:1\nA:x86_64\n\n")})
	}
	sigPart, err := buildCutTar(sigs, 0)
	if err != nil {
		return nil, err
	}
	if ix.Defect == IdxSignatureOnly {
		return sigPart, nil
	}
	out := append(sigPart, part...)
	switch ix.Defect {
	case IdxBitFlip:
		out[len(sigPart)+len(part)/2] ^= 0x01
	case IdxTruncated:
		out = out[:len(out)-100]
	}
	return out, nil
}

// buildTar writes one gzip member with a complete tar (end-of-archive
// blocks included), POSIX ustar, mtime 0, as melange does.
func buildTar(files []tarFile) ([]byte, error) {
	size := 0
	for _, f := range files {
		size += len(f.data)
	}
	var buf bytes.Buffer
	buf.Grow(size/3 + 4096)
	zw, err := gzip.NewWriterLevel(&buf, gzip.DefaultCompression)
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(zw)
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.data)), ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg, Format: tar.FormatUSTAR}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// WriteRepo writes a repository tree: dir/<arch>/APKINDEX.tar.gz and each
// package as dir/<arch>/<FileName>.
func WriteRepo(dir, arch string, index []byte, pkgs ...*BuiltPackage) error {
	d := filepath.Join(dir, arch)
	if err := os.MkdirAll(d, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(d, "APKINDEX.tar.gz"), index, 0o644); err != nil {
		return err
	}
	for _, p := range pkgs {
		if err := os.WriteFile(filepath.Join(d, p.FileName), p.Bytes, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// GenerateEntries returns n deterministic, Wolfi-like index entries for
// arch: about n/12 names with many versions each, melange-style fields
// (no maintainer, empty URL), provides and dependencies, averaging about
// 410 bytes of APKINDEX text per entry — so 186,000 entries make a
// Wolfi-size index of about 76 MB. The checksums are random: the entries
// describe no real package.
func GenerateEntries(n int, arch string, seed uint64) []apk.Entry {
	r := rand.New(rand.NewPCG(seed, 0x766f756368))
	words := []string{"lib", "py3", "ruby", "perl", "go", "java", "node", "rust", "core", "utils", "dev", "doc", "static", "openssl", "curl", "zlib", "xml", "yaml", "json", "http", "grpc", "proto", "crypto", "ssl", "tls"}
	licenses := []string{"MIT", "Apache-2.0", "BSD-3-Clause", "GPL-2.0-or-later", "MPL-2.0", "ISC"}
	word := func() string { return words[r.IntN(len(words))] }
	out := make([]apk.Entry, n)
	names := max(n/12, 1)
	hex := func(k int) string {
		const digits = "0123456789abcdef"
		b := make([]byte, k)
		for i := range b {
			b[i] = digits[r.IntN(16)]
		}
		return string(b)
	}
	for i := range out {
		nameID := i % names
		name := fmt.Sprintf("%s-%s-%d", words[nameID%len(words)], words[(nameID/len(words))%len(words)], nameID)
		version := fmt.Sprintf("%d.%d.%d-r%d", 1+i/names%7, (i/names)%13, r.IntN(30), r.IntN(5))
		var sum [20]byte
		for j := range sum {
			sum[j] = byte(r.Uint32())
		}
		var deps, provs []string
		for range 2 + r.IntN(5) {
			deps = append(deps, "so:"+word()+"-"+word()+".so."+fmt.Sprint(r.IntN(9)))
		}
		deps = append(deps, "merged-usrsbin", "wolfi-baselayout")
		for range 1 + r.IntN(4) {
			provs = append(provs, fmt.Sprintf("cmd:%s-%s=%s", word(), word(), version))
		}
		provs = append(provs, fmt.Sprintf("so:lib%s.so.%d=%d", name, r.IntN(9), r.IntN(9)))
		out[i] = apk.Entry{
			Checksum:      apk.SHA1Checksum(sum),
			Name:          name,
			Version:       version,
			Arch:          arch,
			Size:          int64(2000 + r.IntN(5_000_000)),
			InstalledSize: int64(4000 + r.IntN(20_000_000)),
			Description:   fmt.Sprintf("%s %s %s library and tools for %s", word(), word(), word(), word()),
			License:       licenses[r.IntN(len(licenses))],
			Origin:        name,
			BuildTime:     int64(1_700_000_000 + r.IntN(60_000_000)),
			Commit:        hex(40),
			Depends:       strings.Join(deps, " "),
			Provides:      strings.Join(provs, " "),
		}
	}
	return out
}

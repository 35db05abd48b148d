package testrepo

import (
	"archive/tar"
	"bytes"
	"crypto/sha1" //nolint:gosec // apk v2 identities and PAX checksums are SHA-1.
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/vouchdev/vouch/apk"
)

// PackageDefect selects what is wrong with a built package.
type PackageDefect int

const (
	// PkgOK builds a well-formed package.
	PkgOK PackageDefect = iota
	// PkgWrongDatahash writes a datahash that does not match the data.
	PkgWrongDatahash
	// PkgMissingDatahash leaves datahash out of .PKGINFO (legacy package).
	PkgMissingDatahash
	// PkgTamperedData flips a bit in the data part after building, keeping
	// the control member (and so Q1) intact: what a hostile mirror serves.
	PkgTamperedData
	// PkgTamperedControl flips a bit in .PKGINFO before compression, so Q1
	// no longer matches the index entry built from the good package.
	PkgTamperedControl
	// PkgWrongKey signs with a different key under the Signer's name.
	PkgWrongKey
	// PkgTruncated cuts the last 10 bytes of the file.
	PkgTruncated
)

// File is one regular file of a package's data part.
type File struct {
	Name string // path without leading slash, e.g. "usr/bin/hello"
	Mode int64  // 0 means 0o644
	Data []byte
}

// Package describes an .apk to build. Zero fields get defaults: one small
// file, License "MIT", Origin = Name, BuildTime 1700000000.
type Package struct {
	Name, Version, Arch string
	Description         string
	URL, License        string
	Origin, Commit      string
	Maintainer          string
	BuildTime           int64
	Depends, Provides   []string
	Files               []File
	// DataSize adds a file of that many pseudo-random (incompressible)
	// bytes, for big packages.
	DataSize int
	// Signer, when set, adds a signature member (.SIGN.<SignAlg>.<name>)
	// over the control member; SignAlg defaults to apk.SigRSA256.
	Signer  *Key
	SignAlg apk.SignatureAlgorithm
	Defect  PackageDefect
}

// BuiltPackage is a built .apk and the facts a test checks against.
type BuiltPackage struct {
	Bytes    []byte
	FileName string // "<name>-<version>.apk"
	// Control is the raw control gzip member of the good package; Checksum
	// its Q1.
	Control  []byte
	Checksum apk.Checksum
	// DataHash is SHA-256 of the data part as built (before any defect).
	DataHash [32]byte
	// Entry is the index record of the good package (C, P, V, A, S, ...).
	// With a defect it still describes the package as it should have been,
	// which is what a signed index lists.
	Entry apk.Entry
}

// Build assembles the package: data tar.gz (with PAX
// APK-TOOLS.checksum.SHA1 records, end-of-archive blocks), control tar.gz
// (.PKGINFO with datahash, cut tar) and, with a Signer, the signature
// member (APK-FORMAT §2).
func (p Package) Build() (*BuiltPackage, error) {
	if p.Name == "" || p.Version == "" || p.Arch == "" {
		return nil, fmt.Errorf("testrepo: Package needs Name, Version and Arch")
	}
	if p.License == "" {
		p.License = "MIT"
	}
	if p.Origin == "" {
		p.Origin = p.Name
	}
	if p.BuildTime == 0 {
		p.BuildTime = 1700000000
	}
	if p.Description == "" {
		p.Description = "test package " + p.Name
	}
	if p.SignAlg == 0 {
		p.SignAlg = apk.SigRSA256
	}
	files := p.Files
	if len(files) == 0 {
		files = []File{{Name: "usr/share/doc/" + p.Name + "/README", Data: []byte(p.Name + " " + p.Version + "\n")}}
	}
	if p.DataSize > 0 {
		big := make([]byte, p.DataSize)
		r := rand.New(rand.NewPCG(uint64(len(p.Name)), uint64(p.DataSize)))
		for i := 0; i+8 <= len(big); i += 8 {
			v := r.Uint64()
			for j := range 8 {
				big[i+j] = byte(v >> (8 * j))
			}
		}
		files = append(files, File{Name: "usr/share/" + p.Name + "/blob", Data: big})
	}
	data, installed, err := buildData(files, p.BuildTime)
	if err != nil {
		return nil, err
	}
	dataHash := sha256.Sum256(data)

	info := p.pkginfo(installed, dataHash)
	control, err := buildCutTar([]tarFile{{name: ".PKGINFO", data: []byte(info)}}, p.BuildTime)
	if err != nil {
		return nil, err
	}
	goodControl := control
	if p.Defect == PkgTamperedControl {
		info = strings.Replace(info, "pkgdesc = ", "pkgdesc = tampered ", 1)
		if control, err = buildCutTar([]tarFile{{name: ".PKGINFO", data: []byte(info)}}, p.BuildTime); err != nil {
			return nil, err
		}
	}
	var sig []byte
	if p.Signer != nil {
		signer := p.Signer
		if p.Defect == PkgWrongKey {
			if signer, err = CachedKey("wrong-"+p.Signer.Name, 2048); err != nil {
				return nil, err
			}
		}
		s, err := signer.sign(p.SignAlg, control)
		if err != nil {
			return nil, err
		}
		sig, err = buildCutTar([]tarFile{{name: ".SIGN." + p.SignAlg.String() + "." + p.Signer.Name, data: s}}, 0)
		if err != nil {
			return nil, err
		}
	}
	out := make([]byte, 0, len(sig)+len(control)+len(data))
	out = append(append(append(out, sig...), control...), data...)
	sum := sha1.Sum(goodControl) //nolint:gosec // Q1.
	b := &BuiltPackage{
		FileName: p.Name + "-" + p.Version + ".apk",
		Control:  goodControl,
		Checksum: apk.SHA1Checksum(sum),
		DataHash: dataHash,
	}
	b.Entry = apk.Entry{
		Checksum: b.Checksum, Name: p.Name, Version: p.Version, Arch: p.Arch,
		Size: int64(len(out)), InstalledSize: installed, Description: p.Description,
		URL: p.URL, License: p.License, Origin: p.Origin, Maintainer: p.Maintainer,
		BuildTime: p.BuildTime, Commit: p.Commit,
		Depends: strings.Join(p.Depends, " "), Provides: strings.Join(p.Provides, " "),
	}
	switch p.Defect {
	case PkgTamperedData:
		out[len(out)-20] ^= 0x01
	case PkgTruncated:
		out = out[:len(out)-10]
	}
	b.Bytes = out
	return b, nil
}

func (p Package) pkginfo(installed int64, dataHash [32]byte) string {
	var s strings.Builder
	fmt.Fprintf(&s, "# Generated by vouch testrepo\npkgname = %s\npkgver = %s\npkgdesc = %s\n", p.Name, p.Version, p.Description)
	fmt.Fprintf(&s, "url = %s\nbuilddate = %d\nsize = %d\narch = %s\norigin = %s\n", p.URL, p.BuildTime, installed, p.Arch, p.Origin)
	if p.Commit != "" {
		fmt.Fprintf(&s, "commit = %s\n", p.Commit)
	}
	if p.Maintainer != "" {
		fmt.Fprintf(&s, "maintainer = %s\n", p.Maintainer)
	}
	fmt.Fprintf(&s, "license = %s\n", p.License)
	for _, d := range p.Depends {
		fmt.Fprintf(&s, "depend = %s\n", d)
	}
	for _, d := range p.Provides {
		fmt.Fprintf(&s, "provides = %s\n", d)
	}
	switch p.Defect {
	case PkgMissingDatahash:
	case PkgWrongDatahash:
		wrong := dataHash
		wrong[0] ^= 0xff
		fmt.Fprintf(&s, "datahash = %s\n", hex.EncodeToString(wrong[:]))
	default:
		fmt.Fprintf(&s, "datahash = %s\n", hex.EncodeToString(dataHash[:]))
	}
	return s.String()
}

type tarFile struct {
	name string
	data []byte
	pax  map[string]string
}

// buildCutTar writes a gzip member holding a tar without end-of-archive
// blocks (the "cut" tar of signature and control members, APK-FORMAT §1.1).
func buildCutTar(files []tarFile, mtime int64) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(zw)
	for _, f := range files {
		hdr := &tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.data)), ModTime: time.Unix(mtime, 0), Typeflag: tar.TypeReg, Format: tar.FormatPAX, PAXRecords: f.pax}
		if len(f.pax) == 0 {
			hdr.Format = tar.FormatUSTAR
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Flush(); err != nil { // Flush, not Close: no end-of-archive blocks
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// buildData writes the data part: directories and files with PAX
// APK-TOOLS.checksum.SHA1 records, closed with end-of-archive blocks. It
// returns the installed size.
func buildData(files []File, mtime int64) ([]byte, int64, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err != nil {
		return nil, 0, err
	}
	tw := tar.NewWriter(zw)
	dirs := map[string]bool{}
	var installed int64
	sorted := append([]File(nil), files...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	for _, f := range sorted {
		parts := strings.Split(f.Name, "/")
		for i := 1; i < len(parts); i++ {
			d := strings.Join(parts[:i], "/") + "/"
			if dirs[d] {
				continue
			}
			dirs[d] = true
			if err := tw.WriteHeader(&tar.Header{Name: d, Mode: 0o755, Typeflag: tar.TypeDir, ModTime: time.Unix(mtime, 0), Format: tar.FormatUSTAR}); err != nil {
				return nil, 0, err
			}
		}
		mode := f.Mode
		if mode == 0 {
			mode = 0o644
		}
		sum := sha1.Sum(f.Data) //nolint:gosec // PAX APK-TOOLS.checksum.SHA1.
		hdr := &tar.Header{
			Name: f.Name, Mode: mode, Size: int64(len(f.Data)), Typeflag: tar.TypeReg,
			ModTime: time.Unix(mtime, 0), Format: tar.FormatPAX,
			PAXRecords: map[string]string{"APK-TOOLS.checksum.SHA1": hex.EncodeToString(sum[:])},
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, 0, err
		}
		if _, err := tw.Write(f.Data); err != nil {
			return nil, 0, err
		}
		installed += int64(len(f.Data))
	}
	if err := tw.Close(); err != nil {
		return nil, 0, err
	}
	if err := zw.Close(); err != nil {
		return nil, 0, err
	}
	return buf.Bytes(), installed, nil
}

package apk

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Fuzz targets, seeded with the real fixtures. Run one with, e.g.,
//
//	go test ./apk -run '^$' -fuzz '^FuzzIndexReader$' -fuzztime 5m -parallel 1
//
// Limits are lowered so that no input can make a target allocate more than
// a few MiB.

// seedFiles adds every fixture under testdata/real matching keep and no
// larger than maxSize.
func seedFiles(f *testing.F, maxSize int64, keep func(name string) bool) {
	f.Helper()
	n := 0
	err := filepath.WalkDir(realDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !keep(d.Name()) {
			return err
		}
		info, err := d.Info()
		if err != nil || info.Size() > maxSize {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		f.Add(b)
		n++
		return nil
	})
	if err != nil || n == 0 {
		f.Fatalf("seeding: %d files, %v", n, err)
	}
}

var fuzzIndexOpts = IndexOptions{MaxDecompressedSize: 4 << 20, MaxLineLength: 64 << 10}

func FuzzIndexReader(f *testing.F) {
	seedFiles(f, 64<<10, func(n string) bool { return strings.HasSuffix(n, "APKINDEX.tar.gz") })
	keys := fixtureKeys(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, verified := range []bool{true, false} {
			var x *Index
			var err error
			if verified {
				x, err = LoadIndex(data, keys, fuzzIndexOpts)
			} else {
				x, err = ParseIndexUnverifiedUnsafe(data, fuzzIndexOpts)
			}
			if err != nil {
				continue
			}
			if verified && len(x.VerifiedKeys()) == 0 {
				t.Fatal("verified index without a verified key")
			}
			checkIndexConsistent(t, x)
		}
	})
}

func FuzzIndexText(f *testing.F) {
	for _, name := range []string{"pmos/x86_64/APKINDEX.tar.gz", "wolfi/wolfi-2022-subset.x86_64.APKINDEX.tar.gz", "chainguard-multisig/APKINDEX.tar.gz"} {
		x, err := ParseIndexUnverifiedUnsafe(readFixture(f, name), IndexOptions{})
		if err != nil {
			f.Fatal(err)
		}
		f.Add([]byte(x.text))
	}
	f.Add([]byte("C:Q1LLq2qDNrS/qRnhxQ3hsY/sHbQnc=\nP:a\nV:1\nA:x\n\nC:Q1LLq2qDNrS/qRnhxQ3hsY/sHbQnc=\nP:a\nV:1\nA:x\n"))
	f.Fuzz(func(t *testing.T, text []byte) {
		x := &Index{}
		if err := x.parseText(string(text), fuzzIndexOpts.withDefaults()); err != nil {
			return
		}
		checkIndexConsistent(t, x)
	})
}

func checkIndexConsistent(t *testing.T, x *Index) {
	t.Helper()
	for e := range x.All() {
		if e.Name == "" || e.Version == "" || e.Arch == "" || e.Checksum.IsZero() {
			t.Fatalf("incomplete entry %+v", e)
		}
		got, ok := x.Lookup(e.Name, e.Version, e.Arch)
		if !ok || !got.Checksum.Equal(e.Checksum) {
			t.Fatalf("Lookup(%q, %q, %q) = %v, %v; want %v", e.Name, e.Version, e.Arch, got.Checksum, ok, e.Checksum)
		}
		if _, ok := x.LookupChecksum(e.Checksum); !ok {
			t.Fatalf("LookupChecksum(%v) not found", e.Checksum)
		}
		// A record re-serialised parses to the same entry.
		y := &Index{}
		if err := y.parseText(string(e.AppendRecord(nil)), fuzzIndexOpts.withDefaults()); err != nil || y.Len() != 1 {
			t.Fatalf("re-parse %+v: %v (len %d)", e, err, y.Len())
		}
	}
}

func FuzzPackage(f *testing.F) {
	seedFiles(f, 64<<10, func(n string) bool { return strings.HasSuffix(n, ".apk") })
	keys := fixtureKeys(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ReadPackage(bytes.NewReader(data), PackageOptions{Keys: keys, MaxControlSize: 1 << 20})
		if p == nil {
			if err == nil {
				t.Fatal("nil package and nil error")
			}
			return
		}
		if p.Size != int64(len(data)) || p.Data.Offset+p.Data.Size != p.Size || p.Control.Offset+p.Control.Size != p.Data.Offset ||
			p.SignatureMember.Offset+p.SignatureMember.Size != p.Control.Offset {
			t.Fatalf("sections do not tile the file: sig %+v control %+v data %+v size %d", p.SignatureMember, p.Control, p.Data, len(data))
		}
		c, info, cerr := ParseControl(data[p.Control.Offset : p.Control.Offset+p.Control.Size])
		if cerr != nil || !c.Equal(p.Checksum) || info.Name != p.Info.Name {
			t.Fatalf("ParseControl disagrees: %v %v %v", c, p.Checksum, cerr)
		}
		if err == nil && !p.DataHashOK() {
			t.Fatalf("accepted a package whose datahash does not match")
		}
	})
}

func FuzzPkgInfo(f *testing.F) {
	for _, name := range []string{"alpine/alpine-baselayout-3.2.0-r23.aarch64.apk", "wolfi/ruby3.2-base64-0.2.0-r2.x86_64.apk", "wolfi/perl-json-4.11-r0.x86_64.unsigned.apk"} {
		p, err := ReadPackage(bytes.NewReader(readFixture(f, name)), PackageOptions{})
		if err != nil {
			f.Fatal(err)
		}
		f.Add([]byte(pkginfoText(p.Info)))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePkgInfo(b)
		if err != nil {
			return
		}
		if p.Name == "" || p.Version == "" || p.Arch == "" {
			t.Fatalf("accepted %+v", p)
		}
		if p.DataHash != "" {
			if _, ok := p.DataHashBytes(); !ok {
				t.Fatalf("accepted datahash %q", p.DataHash)
			}
		}
	})
}

// pkginfoText writes a PkgInfo back in .PKGINFO syntax (seeds only).
func pkginfoText(p *PkgInfo) string {
	var b strings.Builder
	kv := func(k, v string) { b.WriteString(k + " = " + v + "\n") }
	kv("pkgname", p.Name)
	kv("pkgver", p.Version)
	kv("arch", p.Arch)
	kv("license", p.License)
	for _, d := range p.Depends {
		kv("depend", d)
	}
	for _, d := range p.Provides {
		kv("provides", d)
	}
	if p.DataHash != "" {
		kv("datahash", p.DataHash)
	}
	return b.String()
}

func FuzzInstalled(f *testing.F) {
	seedFiles(f, 32<<10, func(n string) bool { return strings.HasSuffix(n, ".installed") })
	b := readFixture(f, "installed/alpine-3.21.3-x86_64.installed")
	f.Add(b[:8192])
	f.Fuzz(func(t *testing.T, b []byte) {
		pkgs, err := ParseInstalled(b)
		if err != nil {
			return
		}
		for _, p := range pkgs {
			if p.Checksum.IsZero() || p.Name == "" {
				t.Fatalf("accepted %+v", p.Entry)
			}
		}
	})
}

func FuzzLock(f *testing.F) {
	seedFiles(f, 64<<10, func(n string) bool { return strings.HasSuffix(n, ".lock.json") })
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := ParseLock(bytes.NewReader(b))
		if err != nil {
			return
		}
		for _, p := range l.Contents.Packages {
			c, err := p.Identity()
			if err != nil || c.Alg != ChecksumSHA1 {
				t.Fatalf("accepted package %+v: %v", p, err)
			}
		}
	})
}

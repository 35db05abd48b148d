package apk_test

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"io"
	"runtime"
	"sync"
	"testing"

	kgzip "github.com/klauspost/compress/gzip"

	"github.com/vouchdev/vouch/apk"
	"github.com/vouchdev/vouch/internal/testrepo"
	"github.com/vouchdev/vouch/internal/testtools"
)

// wolfiSize is the number of entries of a Wolfi-size index (APK-FORMAT §7:
// "over 186,000" package versions).
const wolfiSize = 186_000

var bigIndex struct {
	once    sync.Once
	data    []byte
	keys    *apk.Keyring
	entries []apk.Entry
	err     error
}

// loadBigIndex builds the Wolfi-size signed index once per process.
func loadBigIndex(b *testing.B) ([]byte, *apk.Keyring, []apk.Entry) {
	b.Helper()
	bigIndex.once.Do(func() {
		key, err := testrepo.CachedKey("wolfi-signing.rsa.pub", 2048)
		if err != nil {
			bigIndex.err = err
			return
		}
		bigIndex.entries = testrepo.GenerateEntries(wolfiSize, "x86_64", 1)
		bigIndex.data, bigIndex.err = testrepo.Index{Entries: bigIndex.entries, Signers: []testrepo.Signer{{Key: key}}, DescriptionLast: true}.Build()
		bigIndex.keys = key.Keyring()
	})
	if bigIndex.err != nil {
		b.Fatal(bigIndex.err)
	}
	return bigIndex.data, bigIndex.keys, bigIndex.entries
}

// BenchmarkIndexLoad verifies and parses a generated Wolfi-size index
// (186,000 entries, ~76 MB of APKINDEX text).
// Targets: ≤ 1.0 s/op and ≤ 150 MB allocated/op on a 2-core machine, and
// MB/s (over the compressed file) ≥ 50% of BenchmarkIndexGunzip*.
func BenchmarkIndexLoad(b *testing.B) {
	data, keys, _ := loadBigIndex(b)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	var x *apk.Index
	reportCPU := testtools.ReportCPU(b)
	for b.Loop() {
		var err error
		if x, err = apk.LoadIndex(data, keys, apk.IndexOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU()
	if x.Len() != wolfiSize {
		b.Fatalf("Len = %d", x.Len())
	}
	b.ReportMetric(float64(x.TextSize)/1e6, "text-MB")
	// Live heap held by one loaded index.
	x = nil
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	x, _ = apk.LoadIndex(data, keys, apk.IndexOptions{})
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/1e6, "live-MB")
	runtime.KeepAlive(x)
}

// BenchmarkIndexGunzipStdlib only inflates the same file with
// compress/gzip (the comparison for BenchmarkIndexLoad).
func BenchmarkIndexGunzipStdlib(b *testing.B) {
	data, _, _ := loadBigIndex(b)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	reportCPU := testtools.ReportCPU(b)
	for b.Loop() {
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, zr); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU()
}

// BenchmarkIndexGunzipKlauspost only inflates the same file with
// klauspost/compress/gzip, the inflater LoadIndex uses.
func BenchmarkIndexGunzipKlauspost(b *testing.B) {
	data, _, _ := loadBigIndex(b)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	reportCPU := testtools.ReportCPU(b)
	for b.Loop() {
		zr, err := kgzip.NewReader(bytes.NewReader(data))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, zr); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU()
}

// BenchmarkIndexLookup looks entries up in the loaded Wolfi-size index, at
// a stride that defeats the CPU caches. Target: ≤ 1 µs per lookup.
// NameVersionArch and Checksum materialise a whole Entry; Attested (what
// the index cache uses), ChecksumOf and Has read only what they return.
func BenchmarkIndexLookup(b *testing.B) {
	data, keys, entries := loadBigIndex(b)
	x, err := apk.LoadIndex(data, keys, apk.IndexOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("NameVersionArch", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		reportCPU := testtools.ReportCPU(b)
		for b.Loop() {
			e := &entries[i%len(entries)]
			if _, ok := x.Lookup(e.Name, e.Version, e.Arch); !ok {
				b.Fatal("not found")
			}
			i += 7919
		}
		reportCPU()
	})
	b.Run("ChecksumOf", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		reportCPU := testtools.ReportCPU(b)
		for b.Loop() {
			e := &entries[i%len(entries)]
			if _, ok := x.ChecksumOf(e.Name, e.Version, e.Arch); !ok {
				b.Fatal("not found")
			}
			i += 7919
		}
		reportCPU()
	})
	b.Run("Attested", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		reportCPU := testtools.ReportCPU(b)
		for b.Loop() {
			e := &entries[i%len(entries)]
			if _, _, _, ok := x.Attested(e.Name, e.Version, e.Arch); !ok {
				b.Fatal("not found")
			}
			i += 7919
		}
		reportCPU()
	})
	b.Run("Has", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		reportCPU := testtools.ReportCPU(b)
		for b.Loop() {
			e := &entries[i%len(entries)]
			if !x.Has(e.Name, e.Version, e.Arch, e.Checksum) {
				b.Fatal("not found")
			}
			i += 7919
		}
		reportCPU()
	})
	b.Run("Checksum", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		reportCPU := testtools.ReportCPU(b)
		for b.Loop() {
			if _, ok := x.LookupChecksum(entries[i%len(entries)].Checksum); !ok {
				b.Fatal("not found")
			}
			i += 7919
		}
		reportCPU()
	})
	b.Run("Miss", func(b *testing.B) {
		b.ReportAllocs()
		reportCPU := testtools.ReportCPU(b)
		for b.Loop() {
			if _, ok := x.Lookup("no-such-package", "1.0-r0", "x86_64"); ok {
				b.Fatal("found")
			}
		}
		reportCPU()
	})
}

var bigPackage struct {
	once sync.Once
	data []byte
	err  error
}

func loadBigPackage(b *testing.B) []byte {
	b.Helper()
	bigPackage.once.Do(func() {
		var p *testrepo.BuiltPackage
		p, bigPackage.err = testrepo.Package{Name: "big", Version: "1.0-r0", Arch: "x86_64", DataSize: 64 << 20}.Build()
		if p != nil {
			bigPackage.data = p.Bytes
		}
	})
	if bigPackage.err != nil {
		b.Fatal(bigPackage.err)
	}
	return bigPackage.data
}

// BenchmarkPackageDigest digests a 64 MiB package: Q1, data SHA-256 and
// whole-file SHA-256 in one streaming pass.
// Target: MB/s ≥ 80% of BenchmarkSHA256Raw over the same bytes.
func BenchmarkPackageDigest(b *testing.B) {
	data := loadBigPackage(b)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	reportCPU := testtools.ReportCPU(b)
	for b.Loop() {
		if _, err := apk.ReadPackage(bytes.NewReader(data), apk.PackageOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU()
}

// BenchmarkSHA256Raw is one SHA-256 over the same bytes as
// BenchmarkPackageDigest (the baseline for its target).
func BenchmarkSHA256Raw(b *testing.B) {
	data := loadBigPackage(b)
	b.SetBytes(int64(len(data)))
	reportCPU := testtools.ReportCPU(b)
	for b.Loop() {
		sha256.Sum256(data)
	}
	reportCPU()
}

// BenchmarkIndexLoadAlpine verifies and parses the real Alpine v3.16 main
// index (4,929 entries). Target: well under apko's ~25–40 ms.
func BenchmarkIndexLoadAlpine(b *testing.B) {
	data, err := readTestdata("alpine/v3.16-main-x86_64.APKINDEX.tar.gz")
	if err != nil {
		b.Fatal(err)
	}
	keys, err := apk.LoadKeyring("../testdata/real/keys/alpine-devel@lists.alpinelinux.org-6165ee59.rsa.pub")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	reportCPU := testtools.ReportCPU(b)
	for b.Loop() {
		if _, err := apk.LoadIndex(data, keys, apk.IndexOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU()
}

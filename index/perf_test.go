package index

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // apk v2 identities are SHA-1.
	"crypto/sha256"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/vouchdev/vouch/apk"
	"github.com/vouchdev/vouch/internal/testrepo"
	"github.com/vouchdev/vouch/internal/testtools"
)

// bigIndex builds Wolfi-size signed indexes cheaply, one per rotation:
// the first `changing` entries get a new version and checksum each
// rotation (same text length), everything after them is compressed once
// into its own gzip member. An index part of two gzip members is valid
// (they inflate to one tar stream); the signature covers both.
type bigIndex struct {
	key      *testrepo.Key
	entries  []apk.Entry
	changing int
	textLen  int
	tail     []byte // gzip member: rest of APKINDEX, tar padding, end-of-archive blocks
}

const (
	wolfiEntries    = 186_000
	changingEntries = 100
)

var (
	bigOnce sync.Once
	bigIdx  *bigIndex
)

func wolfiIndex(tb testing.TB) *bigIndex {
	tb.Helper()
	bigOnce.Do(func() { bigIdx = newBigIndex(tb, wolfiEntries, changingEntries) })
	if bigIdx == nil {
		tb.Fatal("building the big index failed earlier")
	}
	return bigIdx
}

func newBigIndex(tb testing.TB, n, changing int) *bigIndex {
	b := &bigIndex{key: testKey(tb, "test.rsa.pub"), entries: testrepo.GenerateEntries(n, testArch, 1), changing: changing}
	for i := range b.entries[:changing] {
		b.entries[i].Version = "9.100.0-r0" // rotation r uses 9.<100+r>.0-r0: same length, always newer
	}
	var head []byte
	for i := range b.entries[:changing] {
		head = append(b.entries[i].AppendRecord(head), '\n')
	}
	var tail []byte
	for i := range b.entries[changing:] {
		tail = append(b.entries[changing+i].AppendRecord(tail), '\n')
	}
	b.textLen = len(head) + len(tail)
	if pad := b.textLen % 512; pad != 0 {
		tail = append(tail, make([]byte, 512-pad)...)
	}
	tail = append(tail, make([]byte, 1024)...)
	b.tail = gz(tb, tail)
	return b
}

func gz(tb testing.TB, data []byte) []byte {
	var out bytes.Buffer
	zw, err := gzip.NewWriterLevel(&out, gzip.BestSpeed)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := zw.Write(data); err != nil {
		tb.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return out.Bytes()
}

// rotation returns the signed file of rotation r (0..899).
func (b *bigIndex) rotation(tb testing.TB, r int) []byte {
	var text []byte
	for i := range b.entries[:b.changing] {
		e := b.entries[i]
		e.Version = fmt.Sprintf("9.%03d.0-r0", 100+r)
		e.Checksum = apk.SHA1Checksum(sha1.Sum([]byte(e.Name + e.Version))) //nolint:gosec // test identity
		text = append(e.AppendRecord(text), '\n')
	}
	var hdr bytes.Buffer
	tw := tar.NewWriter(&hdr)
	must := func(err error) {
		if err != nil {
			tb.Fatal(err)
		}
	}
	must(tw.WriteHeader(&tar.Header{Name: "DESCRIPTION", Mode: 0o644, Size: 0, Format: tar.FormatUSTAR}))
	must(tw.WriteHeader(&tar.Header{Name: "APKINDEX", Mode: 0o644, Size: int64(b.textLen), Format: tar.FormatUSTAR}))
	// The tar writer has written both headers; the data follows raw.
	part := append(gz(tb, append(hdr.Bytes(), text...)), b.tail...)
	d := sha256.Sum256(part)
	sig, err := rsa.SignPKCS1v15(rand.Reader, b.key.Private, crypto.SHA256, d[:])
	must(err)
	var sb bytes.Buffer
	zw := gzip.NewWriter(&sb)
	stw := tar.NewWriter(zw)
	must(stw.WriteHeader(&tar.Header{Name: ".SIGN.RSA256." + b.key.Name, Mode: 0o644, Size: int64(len(sig)), Format: tar.FormatUSTAR}))
	_, err = stw.Write(sig)
	must(err)
	must(stw.Flush()) // cut tar: no end-of-archive blocks
	must(zw.Close())
	return append(sb.Bytes(), part...)
}

// memServer serves whatever file was set last.
func memServer(tb testing.TB) (*server, *atomic.Pointer[[]byte]) {
	var cur atomic.Pointer[[]byte]
	srv := newServer(tb, false)
	srv.set(func(w http.ResponseWriter, r *http.Request) {
		if b := cur.Load(); b != nil {
			w.Header().Set("Content-Length", strconv.Itoa(len(*b)))
			_, _ = w.Write(*b)
		}
	})
	return srv, &cur
}

func heapAfterGC() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestRotationHeap: 100 rotations of a Wolfi-size (186,000-entry) index
// leave the live heap within 10% of one snapshot's size. Heavy (minutes,
// ~1 GB peak): it runs only with VOUCH_INDEX_ROTATIONS set (to the number
// of rotations, 100 for the stated target).
func TestRotationHeap(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("VOUCH_INDEX_ROTATIONS"))
	if n <= 0 || testing.Short() {
		t.Skip("heavy: set VOUCH_INDEX_ROTATIONS=100 to run")
	}
	ctx := context.Background()
	big := wolfiIndex(t)
	srv, cur := memServer(t)
	clk := newClock()
	cfg := testConfig(openStore(t, ""), clk, big.key.Keyring(), srv.URL)
	cfg.Repositories[0].MaxIndexBytes = 512 << 20
	cfg.BodyTimeout = time.Minute
	c := newCache(t, cfg)

	body := big.rotation(t, 0)
	cur.Store(&body)
	h0 := heapAfterGC()
	start := time.Now()
	if r := refresh(t, c); r.Outcome != Updated || r.Entries != wolfiEntries {
		t.Fatalf("first load: %+v", r)
	}
	first := time.Since(start)
	h1 := heapAfterGC()
	snapSize := int64(h1) - int64(h0)
	t.Logf("one snapshot: %d entries, file %.1f MB, live heap %.1f MB, first load %v", wolfiEntries, float64(len(body))/1e6, float64(snapSize)/1e6, first)

	start = time.Now()
	for r := 1; r <= n; r++ {
		clk.Advance(time.Minute)
		body := big.rotation(t, r)
		cur.Store(&body)
		if res := refresh(t, c); res.Outcome != Updated {
			t.Fatalf("rotation %d: %+v", r, res)
		}
	}
	per := time.Since(start) / time.Duration(n)
	hN := heapAfterGC()
	growth := int64(hN) - int64(h1)
	t.Logf("after %d rotations: live heap %.1f MB, growth %.2f MB = %.2f%% of one snapshot; %v per rotation (build+fetch+verify+check+persist)",
		n, float64(int64(hN)-int64(h0))/1e6, float64(growth)/1e6, 100*float64(growth)/float64(snapSize), per)
	if growth > snapSize/10 {
		t.Errorf("heap grew by %d bytes over %d rotations, more than 10%% of one snapshot (%d bytes)", growth, n, snapSize)
	}
	if l := c.Lookup(ctx, "test", testArch, big.entries[0].Name, fmt.Sprintf("9.%03d.0-r0", 100+n)); l.Outcome != Current {
		t.Errorf("Lookup of the newest rotation = %v", l.Outcome)
	}
}

// benchCache returns a cache serving the Wolfi-size index.
func benchCache(b *testing.B) (*Cache, *bigIndex) {
	big := wolfiIndex(b)
	srv, cur := memServer(b)
	cfg := testConfig(openStore(b, ""), newClock(), big.key.Keyring(), srv.URL)
	cfg.Repositories[0].MaxIndexBytes = 512 << 20
	cfg.BodyTimeout = time.Minute
	c := newCache(b, cfg)
	body := big.rotation(b, 0)
	cur.Store(&body)
	if r := refresh(b, c); r.Outcome != Updated {
		b.Fatal(r)
	}
	return c, big
}

// BenchmarkLookupCurrent: the current-index path of Lookup on a
// 186,000-entry snapshot, each lookup at a random place (cold caches: the
// worst case). Target: ≤ 1 µs/op on an idle machine.
func BenchmarkLookupCurrent(b *testing.B) {
	c, big := benchCache(b)
	ctx := context.Background()
	es := big.entries[big.changing:]
	b.ReportAllocs()
	b.ResetTimer()
	defer testtools.ReportCPU(b)()
	i := 0
	for b.Loop() {
		e := &es[i%len(es)]
		if l := c.Lookup(ctx, "test", testArch, e.Name, e.Version); l.Outcome != Current {
			b.Fatalf("Lookup(%s %s) = %v", e.Name, e.Version, l.Outcome)
		}
		i += 7919
	}
}

// BenchmarkLookupCurrentHot: the current-index path for a working set of
// 512 packages (a build's packages, asked again and again), so the
// snapshot's hot parts stay in the CPU caches. Target: ≤ 1 µs/op.
func BenchmarkLookupCurrentHot(b *testing.B) {
	c, big := benchCache(b)
	ctx := context.Background()
	es := big.entries[big.changing : big.changing+512]
	b.ReportAllocs()
	b.ResetTimer()
	defer testtools.ReportCPU(b)()
	i := 0
	for b.Loop() {
		e := &es[i%len(es)]
		if l := c.Lookup(ctx, "test", testArch, e.Name, e.Version); l.Outcome != Current {
			b.Fatalf("Lookup(%s %s) = %v", e.Name, e.Version, l.Outcome)
		}
		i++
	}
}

// BenchmarkLookupCurrentParallel: the same from all cores at once.
func BenchmarkLookupCurrentParallel(b *testing.B) {
	c, big := benchCache(b)
	ctx := context.Background()
	es := big.entries[big.changing:]
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			e := &es[i%len(es)]
			if l := c.Lookup(ctx, "test", testArch, e.Name, e.Version); l.Outcome != Current {
				b.Errorf("Lookup = %v", l.Outcome)
				return
			}
			i += 7919
		}
	})
}

// BenchmarkLookupNotCurrent: a package the current snapshot does not
// list, so Lookup asks the store (SQLite) for its history — the same
// query that answers History. Target: well under a millisecond.
func BenchmarkLookupNotCurrent(b *testing.B) {
	c, _ := benchCache(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if l := c.Lookup(ctx, "test", testArch, "nope", "1"); l.Outcome != NotFound {
			b.Fatalf("Lookup = %v", l.Outcome)
		}
	}
}

// BenchmarkRefreshNotModified: a refresh answered by 304 (no parse).
func BenchmarkRefreshNotModified(b *testing.B) {
	key := testKey(b, "test.rsa.pub")
	srv := newServer(b, false)
	c := newCache(b, testConfig(openStore(b, ""), newClock(), key.Keyring(), srv.URL))
	srv.serve(signedIndex(b, key, testArch, "v1", pkgsV1))
	refresh(b, c)
	parses := c.parses.Load()
	b.ResetTimer()
	for b.Loop() {
		if r := refresh(b, c); r.Outcome != NotModified {
			b.Fatal(r)
		}
	}
	if c.parses.Load() != parses {
		b.Fatal("a 304 was parsed")
	}
}

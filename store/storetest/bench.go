package storetest

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/vouchdev/vouch/internal/testtools"
	"github.com/vouchdev/vouch/store"
)

// BenchFactory returns a new, empty store for one benchmark run.
type BenchFactory func(b *testing.B) store.Store

// IndexSize is the entry count of the large index the benchmarks use: the
// order of Wolfi's x86_64 APKINDEX.
const IndexSize = 186000

// cpuMeter adds up the CPU time (user + system, all threads of this
// process) spent in timed calls. On a shared machine wall time depends on
// the neighbours; CPU time per operation does much less. It does not count
// a database server's own CPU.
type cpuMeter struct{ total time.Duration }

func (m *cpuMeter) measure(f func()) {
	start := testtools.CPUTime()
	f()
	m.total += testtools.CPUTime() - start
}

func (m *cpuMeter) report(b *testing.B) {
	b.ReportMetric(float64(m.total.Microseconds())/1000/float64(b.N), "cpu-ms/op")
}

// indexBytes stands in for a signed index file: 8 MiB of incompressible
// bytes, the order of a large gzip-compressed APKINDEX.
func indexBytes() []byte {
	b := make([]byte, 8<<20)
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
	return b
}

// BenchmarkFirstSnapshot stores a first snapshot of IndexSize entries.
// Targets: ≤ 3 s on SQLite, ≤ 5 s on PostgreSQL.
func BenchmarkFirstSnapshot(b *testing.B, newStore BenchFactory) {
	entries := Entries(IndexSize, 1)
	raw := indexBytes()
	var cpu cpuMeter
	defer cpu.report(b)
	for b.Loop() {
		b.StopTimer()
		st := newStore(b)
		b.StartTimer()
		var err error
		cpu.measure(func() {
			_, err = st.SaveSnapshot(context.Background(), NewSnapshot("wolfi", "x86_64", 0, len(entries), raw, t0), store.Diff{Added: entries})
		})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		st.Close() // lets background work (SQLite checkpoints) finish untimed
		b.StartTimer()
	}
}

// BenchmarkNextSnapshot stores a snapshot in which 1% of IndexSize entries
// changed version (1860 removed, 1860 added) after a first one. Target:
// ≤ 0.3 s. Real snapshots arrive minutes apart; the untimed pause before
// each one lets a backend's background work for the previous one (SQLite's
// WAL checkpoint) finish, as it would in service.
func BenchmarkNextSnapshot(b *testing.B, newStore BenchFactory) {
	ctx := context.Background()
	st := newStore(b)
	cur := Entries(IndexSize, 1)
	raw := indexBytes()
	parent, err := st.SaveSnapshot(ctx, NewSnapshot("wolfi", "x86_64", 0, len(cur), raw, t0), store.Diff{Added: cur})
	if err != nil {
		b.Fatal(err)
	}
	seed := uint64(100)
	var cpu cpuMeter
	defer cpu.report(b)
	pause := 3 * time.Second // the first snapshot's background work is the largest
	for b.Loop() {
		b.StopTimer()
		seed++
		next, d := Change(cur, 0.01, seed)
		snap := NewSnapshot("wolfi", "x86_64", parent, len(next), append([]byte(fmt.Sprint(seed)), raw...), t0.Add(time.Duration(seed)*time.Minute))
		time.Sleep(pause)
		b.StartTimer()
		cpu.measure(func() { parent, err = st.SaveSnapshot(ctx, snap, d) })
		if err != nil {
			b.Fatal(err)
		}
		cur = next
		pause = time.Second
	}
}

// BenchmarkLedgerAppend appends attestations of 50 packages each, with
// bundles of the size and make-up vouch issues for 50 packages (about
// 95 KB of SPDX and 7 KB of VSA, base64 JSON). Target: ≤ 2 ms on SQLite.
//
// Two workloads: "pool" draws each image's 50 packages from 2,000 package
// builds (images of one distribution share most of their packages, so the
// ledger's checksum index sees the same keys again); "unique" gives every
// package of every attestation a checksum never seen before, the worst
// case for that index.
func BenchmarkLedgerAppend(b *testing.B, newStore BenchFactory) {
	for _, pool := range []int{2000, 0} {
		name := "unique"
		if pool > 0 {
			name = fmt.Sprint("pool=", pool)
		}
		b.Run(name, func(b *testing.B) { benchmarkLedgerAppend(b, newStore, pool) })
	}
}

func benchmarkLedgerAppend(b *testing.B, newStore BenchFactory, pool int) {
	ctx := context.Background()
	st := newStore(b)
	var cpu cpuMeter
	defer cpu.report(b)
	rng := rand.New(rand.NewPCG(1, 2))
	// Bundles are built before the clock starts (they take longer to make
	// than to store), 64 distinct ones used in turn.
	var spdx, vsa [64][]byte
	for k := range spdx {
		spdx[k] = BundleLike(fmt.Sprint("bundle", k), 50, 1400)
		vsa[k] = BundleLike(fmt.Sprint("bundle", k, "vsa"), 4, 1100)
	}
	// Entries are made in batches with the timer stopped: making one (50
	// formatted names, 100 hashes) costs a twentieth of storing it.
	var batch []store.Attestation
	i := 0
	for b.Loop() {
		if len(batch) == 0 {
			b.StopTimer()
			for range 256 {
				i++
				a := Attestation("", t0.Add(time.Duration(i)*time.Second), fmt.Sprint("subject", i), 50)
				if pool > 0 {
					for j := range a.Packages {
						k := rng.IntN(pool)
						a.Packages[j].Name = fmt.Sprintf("pkg-%05d", k)
						a.Packages[j].Checksum = Checksum(fmt.Sprint("pool/", k))
					}
				}
				a.Predicates[0].Bundle, a.Predicates[1].Bundle = spdx[i%len(spdx)], vsa[i%len(vsa)]
				batch = append(batch, a)
			}
			b.StartTimer()
		}
		a := batch[0]
		batch = batch[1:]
		var err error
		cpu.measure(func() { _, err = st.AppendAttestation(ctx, a) })
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BundleLike returns a stand-in for a Sigstore bundle: a DSSE envelope whose
// payload is JSON of n package objects of about size bytes each, varying
// per package as SPDX packages do (names, versions, checksums), base64
// encoded. It compresses about as well as a real one.
func BundleLike(seed string, n, size int) []byte {
	var p []byte
	p = append(p, `{"_type":"https://in-toto.io/Statement/v1","predicate":{"packages":[`...)
	for i := range n {
		if i > 0 {
			p = append(p, ',')
		}
		sum := SHA256([]byte(fmt.Sprint(seed, i)))
		start := len(p)
		p = fmt.Appendf(p, `{"SPDXID":"SPDXRef-Package-apk-pkg-%05d-1.%d.0-r%d-x86-64-%s","name":"pkg-%05d","versionInfo":"1.%d.0-r%d",`+
			`"supplier":"Organization: Wolfi","downloadLocation":"https://packages.wolfi.dev/os/x86_64/pkg-%05d-1.%d.0-r%d.apk",`+
			`"checksums":[{"algorithm":"SHA1","checksumValue":"%s"},{"algorithm":"SHA256","checksumValue":"%s"}],`+
			`"externalRefs":[{"referenceCategory":"PACKAGE-MANAGER","referenceType":"purl","referenceLocator":"pkg:apk/wolfi/pkg-%05d@1.%d.0-r%d?arch=x86_64"}],`+
			`"annotations":[{"annotator":"Tool: vouch","annotationType":"OTHER","comment":"{\"indexURL\":\"https://packages.wolfi.dev/os/x86_64/APKINDEX.tar.gz\",\"indexSHA256\":\"%s\"}"}]`,
			i, i%7, i%3, sum[:16], i, i%7, i%3, i, i%7, i%3, sum[:40], sum, i, i%7, i%3, SHA256([]byte(seed)))
		// The rest: a description with some per-package text (real SPDX
		// compresses about 5x; all-space padding would flatter it).
		p = append(p, `,"description":"`...)
		for k := 0; len(p)-start < size-2; k++ {
			if k%3 == 0 {
				p = append(p, SHA256([]byte(fmt.Sprint(seed, i, k)))[:16]...)
			} else {
				p = append(p, " shared library and tools for the package"...)
			}
		}
		p = append(p, `"}`...)
	}
	p = append(p, `]}}`...)
	out := []byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"publicKey":{"hint":"p1ffoltYGFYkUeS1xgn2U3ZffWokUtP1I8YyYnuEZ3g="}},"dsseEnvelope":{"payload":"`)
	out = base64.StdEncoding.AppendEncode(out, p)
	out = fmt.Appendf(out, `","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"%s"}]}}`, base64.StdEncoding.EncodeToString([]byte(SHA256([]byte(seed+"sig")))))
	return out
}

// BenchmarkLookupEntry looks up (name, version, arch) in a store holding an
// IndexSize-entry index. Target: ≤ 100 µs.
func BenchmarkLookupEntry(b *testing.B, newStore BenchFactory) {
	ctx := context.Background()
	st := newStore(b)
	entries := Entries(IndexSize, 1)
	if _, err := st.SaveSnapshot(ctx, NewSnapshot("wolfi", "x86_64", 0, len(entries), []byte("raw"), t0), store.Diff{Added: entries}); err != nil {
		b.Fatal(err)
	}
	i := 0
	for b.Loop() {
		e := entries[(i*7919)%len(entries)]
		i++
		got, err := st.LookupEntry(ctx, e.Name, e.Version, "x86_64")
		if err != nil || len(got) != 1 {
			b.Fatalf("LookupEntry = %d records, %v", len(got), err)
		}
	}
}

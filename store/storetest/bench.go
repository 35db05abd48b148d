package storetest

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

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

func cpuNow() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func (m *cpuMeter) measure(f func()) {
	start := cpuNow()
	f()
	m.total += cpuNow() - start
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

// BenchmarkLedgerAppend appends attestations of 50 packages each. Target:
// ≤ 2 ms on SQLite.
func BenchmarkLedgerAppend(b *testing.B, newStore BenchFactory) {
	ctx := context.Background()
	st := newStore(b)
	var cpu cpuMeter
	defer cpu.report(b)
	i := 0
	for b.Loop() {
		i++
		a := Attestation("", t0.Add(time.Duration(i)*time.Second), fmt.Sprint("subject", i), 50)
		var err error
		cpu.measure(func() { _, err = st.AppendAttestation(ctx, a) })
		if err != nil {
			b.Fatal(err)
		}
	}
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

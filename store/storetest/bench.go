package storetest

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/vouchdev/vouch/store"
)

// BenchFactory returns a new, empty store for one benchmark run.
type BenchFactory func(b *testing.B) store.Store

// IndexSize is the entry count of the large index the benchmarks use: the
// order of Wolfi's x86_64 APKINDEX.
const IndexSize = 186000

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
	for b.Loop() {
		b.StopTimer()
		st := newStore(b)
		b.StartTimer()
		if _, err := st.SaveSnapshot(context.Background(), NewSnapshot("wolfi", "x86_64", 0, len(entries), raw, t0), store.Diff{Added: entries}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNextSnapshot stores a snapshot in which 1% of IndexSize entries
// changed version (1860 removed, 1860 added) after a first one. Target:
// ≤ 0.3 s.
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
	for b.Loop() {
		b.StopTimer()
		seed++
		next, d := Change(cur, 0.01, seed)
		snap := NewSnapshot("wolfi", "x86_64", parent, len(next), append([]byte(fmt.Sprint(seed)), raw...), t0.Add(time.Duration(seed)*time.Minute))
		b.StartTimer()
		if parent, err = st.SaveSnapshot(ctx, snap, d); err != nil {
			b.Fatal(err)
		}
		cur = next
	}
}

// BenchmarkLedgerAppend appends attestations of 50 packages each. Target:
// ≤ 2 ms on SQLite.
func BenchmarkLedgerAppend(b *testing.B, newStore BenchFactory) {
	ctx := context.Background()
	st := newStore(b)
	i := 0
	for b.Loop() {
		i++
		if _, err := st.AppendAttestation(ctx, Attestation("", t0.Add(time.Duration(i)*time.Second), fmt.Sprint("subject", i), 50)); err != nil {
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

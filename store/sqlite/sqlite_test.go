package sqlite_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vouchdev/vouch/store"
	"github.com/vouchdev/vouch/store/sqlite"
	"github.com/vouchdev/vouch/store/storetest"
)

func newFileStore(t *testing.T) store.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(t.TempDir(), "vouch.db")})
	if err != nil {
		t.Fatalf("sqlite.Open = %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, newFileStore)
}

func TestConformanceMemory(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := store.Open(context.Background(), "sqlite://:memory:")
		if err != nil {
			t.Fatalf("store.Open = %v", err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestParseURL(t *testing.T) {
	tests := []struct {
		name    string
		url     string
		want    string
		wantErr error
	}{
		{name: "absolute path", url: "sqlite:///var/lib/vouch/vouch.db", want: "/var/lib/vouch/vouch.db"},
		{name: "memory", url: "sqlite://:memory:", want: sqlite.Memory},
		{name: "relative path", url: "sqlite://vouch.db", wantErr: store.ErrInvalidArgument},
		{name: "query", url: "sqlite:///x.db?mode=ro", wantErr: store.ErrInvalidArgument},
		{name: "other scheme", url: "postgres://x", wantErr: store.ErrInvalidArgument},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := sqlite.ParseURL(tc.url)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("ParseURL(%q) error = %v, want %v", tc.url, err, tc.wantErr)
			}
			if got.Path != tc.want {
				t.Errorf("ParseURL(%q).Path = %q, want %q", tc.url, got.Path, tc.want)
			}
		})
	}
}

func TestReopenKeepsData(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "vouch.db")
	s, err := store.Open(ctx, "sqlite://"+path)
	if err != nil {
		t.Fatalf("store.Open = %v", err)
	}
	id, err := s.SaveSnapshot(ctx, storetest.NewSnapshot("wolfi", "x86_64", 0, 10, []byte("raw"), storetest.Time()), store.Diff{Added: storetest.Entries(10, 1)})
	if err != nil {
		t.Fatalf("SaveSnapshot = %v", err)
	}
	s.Close()
	s, err = store.Open(ctx, "sqlite://"+path)
	if err != nil {
		t.Fatalf("reopen = %v", err)
	}
	defer s.Close()
	got, err := s.LatestSnapshot(ctx, "wolfi", "x86_64")
	if err != nil || got.ID != id || string(got.Raw) != "raw" {
		t.Errorf("after reopen LatestSnapshot = %d %q, %v; want %d %q", got.ID, got.Raw, err, id, "raw")
	}
}

// TestTwoStoresOneFile saves concurrently through two Store values on one
// file (as two processes would): the immediate transactions and the busy
// timeout serialise them, so one wins and the other sees ErrConflict, never
// a "database is locked" failure.
func TestTwoStoresOneFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "vouch.db")
	var stores [2]store.Store
	for i := range stores {
		s, err := sqlite.Open(ctx, sqlite.Config{Path: path})
		if err != nil {
			t.Fatalf("sqlite.Open = %v", err)
		}
		defer s.Close()
		stores[i] = s
	}
	entries := storetest.Entries(20000, 9)
	errs := make(chan error, 2)
	for i, s := range stores {
		go func() {
			raw := []byte{byte(i)}
			_, err := s.SaveSnapshot(ctx, storetest.NewSnapshot("wolfi", "x86_64", 0, len(entries), raw, storetest.Time()), store.Diff{Added: entries})
			errs <- err
		}()
	}
	var ok, conflict int
	for range 2 {
		switch err := <-errs; {
		case err == nil:
			ok++
		case errors.Is(err, store.ErrConflict):
			conflict++
		default:
			t.Errorf("SaveSnapshot = %v, want nil or ErrConflict", err)
		}
	}
	if ok != 1 || conflict != 1 {
		t.Errorf("%d saved, %d conflicts; want 1 and 1", ok, conflict)
	}
	seen, err := stores[1].SeenEntries(ctx, "wolfi", "x86_64")
	if err != nil || len(seen) != len(entries) {
		t.Errorf("SeenEntries = %d, %v; want %d", len(seen), err, len(entries))
	}
}

// TestWALBounded: under steady writes with readers always active, passive
// checkpoints alone never reset the WAL (checkpoint starvation); the
// checkpointer must keep it near Config.WALLimit.
func TestWALBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("writes about 100 MB")
	}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "vouch.db")
	const limit = 2 << 20
	s, err := sqlite.Open(ctx, sqlite.Config{Path: path, WALLimit: limit})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for r := range 4 { // overlapping readers: one is nearly always in a read transaction
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if _, _, err := s.ListAttestations(ctx, store.AttestationQuery{PageSize: 5}); err != nil {
					t.Errorf("reader %d: %v", r, err)
					return
				}
			}
		})
	}
	bundle := bytes.Repeat([]byte("x"), 200<<10) // 200 KiB per predicate: 400 KiB per entry
	var maxWAL int64
	t0 := time.Unix(1_700_000_000, 0)
	start := time.Now()
	const entries = 250
	for i := range entries {
		a := storetest.Attestation("", t0.Add(time.Duration(i)*time.Second), fmt.Sprint("wal", i), 10)
		for j := range a.Predicates {
			a.Predicates[j].Bundle = append([]byte(fmt.Sprint(i, j)), bundle...)
		}
		if _, err := s.AppendAttestation(ctx, a); err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Stat(path + "-wal"); err == nil && fi.Size() > maxWAL {
			maxWAL = fi.Size()
		}
		time.Sleep(5 * time.Millisecond)
	}
	written := float64(entries * 400 << 10)
	rate := written / time.Since(start).Seconds() // bytes per second
	// With readers still active, give the checkpointer (once a second) time
	// to run after a last write, then write once more.
	settle := func(i int) {
		if _, err := s.AppendAttestation(ctx, storetest.Attestation("", t0.Add(time.Duration(i)*time.Second), fmt.Sprint("wal", i), 1)); err != nil {
			t.Fatal(err)
		}
	}
	settle(1000)
	time.Sleep(2500 * time.Millisecond)
	settle(1001)
	fi, err := os.Stat(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	t.Logf("wrote about %d MiB; largest WAL seen %.1f MiB, at the end %.1f MiB (limit %d MiB)",
		entries*400>>10, float64(maxWAL)/(1<<20), float64(fi.Size())/(1<<20), limit>>20)
	// Unchecked, the WAL holds everything written (more, with B-tree
	// pages). The checkpointer looks about once a second, so between two
	// looks the WAL grows by a second or more of writes (more on a busy
	// machine): a bound of half of everything written tells the two apart.
	if bound := int64(written / 2); maxWAL > bound {
		t.Errorf("WAL grew to %d bytes; want at most %d, half of what was written (%.1f MiB/s)", maxWAL, bound, rate/(1<<20))
	}
	// Once the checkpointer has run, the WAL is back within the limit
	// (truncated, or reset and cut to journal_size_limit).
	if fi.Size() > limit {
		t.Errorf("WAL is %d bytes after the checkpointer ran; want at most the limit %d", fi.Size(), limit)
	}
}

// TestConformanceLedgerRuns runs the ledger cases with a ledger run written
// after every append (queries read only runs) and after every few (runs and
// pending rows together).
func TestConformanceLedgerRuns(t *testing.T) {
	for _, batch := range []int{1, 7} {
		t.Run(fmt.Sprint("batch=", batch), func(t *testing.T) {
			for _, c := range storetest.Cases() {
				if !strings.HasPrefix(c.Name, "Ledger") && c.Name != "Revocations" {
					continue
				}
				t.Run(c.Name, func(t *testing.T) {
					s, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(t.TempDir(), "vouch.db"), IndexBatch: batch})
					if err != nil {
						t.Fatalf("sqlite.Open = %v", err)
					}
					t.Cleanup(func() { s.Close() })
					c.Test(t, s)
				})
			}
		})
	}
}

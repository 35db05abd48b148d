// Package storetest is the conformance suite every store backend must pass, plus the data generators its tests and benchmarks share.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/vouchdev/vouch/apk"
	"github.com/vouchdev/vouch/store"
)

// Factory returns a new, empty store for one test case. It registers its own
// cleanup (closing the store, dropping its database) with t.Cleanup.
type Factory func(t *testing.T) store.Store

// Case is one named conformance case.
type Case struct {
	Name string
	Test func(t *testing.T, s store.Store)
}

// Cases returns the conformance cases, in the order Run runs them.
func Cases() []Case {
	return []Case{
		{"SnapshotNotFound", testSnapshotNotFound},
		{"SnapshotFirstSaveAndLoad", testSnapshotFirstSaveAndLoad},
		{"SnapshotDiffHistory", testSnapshotDiffHistory},
		{"SnapshotEntryReappears", testSnapshotEntryReappears},
		{"SnapshotStaleParentConflict", testSnapshotStaleParentConflict},
		{"SnapshotInvalidWritesNothing", testSnapshotInvalidWritesNothing},
		{"SnapshotConcurrentSavesOneWins", testSnapshotConcurrentSaves},
		{"SnapshotConfirmFresh", testSnapshotConfirmFresh},
		{"SnapshotsBySHA256Rollback", testSnapshotsBySHA256},
		{"StreamsAreIndependent", testStreamsIndependent},
		{"LookupEntryAcrossRepositories", testLookupEntry},
		{"TimesAreUTCMicroseconds", testTimes},
		{"LedgerAppendAndGet", testLedgerAppendGet},
		{"LedgerLargeAttestation", testLedgerLarge},
		{"LedgerDuplicateIDConflict", testLedgerDuplicate},
		{"LedgerInvalid", testLedgerInvalid},
		{"LedgerQueries", testLedgerQueries},
		{"LedgerPaging", testLedgerPaging},
		{"Revocations", testRevocations},
		{"Events", testEvents},
		{"RefreshLock", testRefreshLock},
		{"WatchSnapshots", testWatchSnapshots},
		{"ClosedStore", testClosed},
	}
}

// Run runs every case of Cases on a fresh store from newStore.
func Run(t *testing.T, newStore Factory) {
	for _, c := range Cases() {
		t.Run(c.Name, func(t *testing.T) {
			c.Test(t, newStore(t))
		})
	}
}

var (
	t0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

	// checksumCmp compares checksums by value.
	checksumCmp = cmp.Comparer(func(a, b apk.Checksum) bool { return a.Equal(b) })
)

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func mustSave(t *testing.T, s store.Store, snap store.Snapshot, d store.Diff) int64 {
	t.Helper()
	id, err := s.SaveSnapshot(ctxFor(t), snap, d)
	if err != nil {
		t.Fatalf("SaveSnapshot(%s/%s parent %d) = %v", snap.Repository, snap.Arch, snap.Parent, err)
	}
	return id
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: error = %v, want %v", what, err, want)
	}
}

// record is an EntryRecord without the snapshot bookkeeping, for compact
// expectations.
type record struct {
	Repo, Arch, Name, Version, Checksum string
	First, Left                         int64
	FirstSeen, LastSeen, LeftAt         time.Time
}

func records(rs []store.EntryRecord) []record {
	out := make([]record, len(rs))
	for i, r := range rs {
		out[i] = record{r.Repository, r.Arch, r.Name, r.Version, r.Checksum.String(), r.FirstSnapshot, r.LeftSnapshot, r.FirstSeen, r.LastSeen, r.LeftAt}
	}
	return out
}

func sortRecords(rs []record) []record {
	sort.Slice(rs, func(i, j int) bool {
		a, b := rs[i], rs[j]
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		if a.Version != b.Version {
			return a.Version < b.Version
		}
		return a.First < b.First
	})
	return rs
}

func testSnapshotNotFound(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	_, err := s.LatestSnapshot(ctx, "wolfi", "x86_64")
	wantErr(t, "LatestSnapshot", err, store.ErrNotFound)
	_, err = s.LatestSnapshotID(ctx, "wolfi", "x86_64")
	wantErr(t, "LatestSnapshotID", err, store.ErrNotFound)
	_, err = s.Snapshot(ctx, 12345)
	wantErr(t, "Snapshot", err, store.ErrNotFound)
	wantErr(t, "ConfirmFresh", s.ConfirmFresh(ctx, 12345, t0), store.ErrNotFound)
	got, err := s.SnapshotsBySHA256(ctx, "wolfi", "x86_64", SHA256([]byte("x")))
	if err != nil || len(got) != 0 {
		t.Errorf("SnapshotsBySHA256 on empty store = %v, %v; want none", got, err)
	}
	seen, err := s.SeenEntries(ctx, "wolfi", "x86_64")
	if err != nil || len(seen) != 0 {
		t.Errorf("SeenEntries on empty store = %v, %v; want none", seen, err)
	}
	hist, err := s.EntryHistory(ctx, "wolfi", "x86_64", "busybox", "1.36.1-r0")
	if err != nil || len(hist) != 0 {
		t.Errorf("EntryHistory on empty store = %v, %v; want none", hist, err)
	}
}

func testSnapshotFirstSaveAndLoad(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	entries := Entries(50, 1)
	raw := []byte("signed index bytes 1")
	snap := NewSnapshot("wolfi", "x86_64", 0, len(entries), raw, t0)
	snap.KeyNames = []string{"wolfi-signing.rsa.pub", "wolfi-2.rsa.pub"}
	id := mustSave(t, s, snap, store.Diff{Added: entries})
	if id <= 0 {
		t.Fatalf("SaveSnapshot id = %d, want > 0", id)
	}
	want := snap
	want.ID, want.ConfirmedAt = id, t0
	got, err := s.LatestSnapshot(ctx, "wolfi", "x86_64")
	if err != nil {
		t.Fatalf("LatestSnapshot = %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("LatestSnapshot mismatch (-want +got):\n%s", diff)
	}
	gotID, err := s.LatestSnapshotID(ctx, "wolfi", "x86_64")
	if err != nil || gotID != id {
		t.Errorf("LatestSnapshotID = %d, %v; want %d", gotID, err, id)
	}
	meta, err := s.Snapshot(ctx, id)
	if err != nil {
		t.Fatalf("Snapshot(%d) = %v", id, err)
	}
	want.Raw = nil
	if diff := cmp.Diff(want, meta); diff != "" {
		t.Errorf("Snapshot(%d) mismatch (-want +got):\n%s", id, diff)
	}
	seen, err := s.SeenEntries(ctx, "wolfi", "x86_64")
	if err != nil {
		t.Fatalf("SeenEntries = %v", err)
	}
	var wantSeen []record
	for _, e := range entries {
		wantSeen = append(wantSeen, record{"wolfi", "x86_64", e.Name, e.Version, e.Checksum.String(), id, 0, t0, t0, time.Time{}})
	}
	if diff := cmp.Diff(sortRecords(wantSeen), sortRecords(records(seen))); diff != "" {
		t.Errorf("SeenEntries mismatch (-want +got):\n%s", diff)
	}
}

func testSnapshotDiffHistory(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	a := store.Entry{Name: "a", Version: "1.0-r0", Checksum: Checksum("a1")}
	b := store.Entry{Name: "b", Version: "1.0-r0", Checksum: Checksum("b1")}
	c := store.Entry{Name: "c", Version: "1.0-r0", Checksum: Checksum("c1")}
	d := store.Entry{Name: "d", Version: "2.0-r0", Checksum: Checksum("d1")}
	c2 := store.Entry{Name: "c", Version: "1.0-r0", Checksum: Checksum("c2")} // equivocation accepted
	t1, t2, t3 := t0.Add(time.Hour), t0.Add(2*time.Hour), t0.Add(3*time.Hour)

	id1 := mustSave(t, s, NewSnapshot("wolfi", "x86_64", 0, 3, []byte("r1"), t1), store.Diff{Added: []store.Entry{a, b, c}})
	id2 := mustSave(t, s, NewSnapshot("wolfi", "x86_64", id1, 3, []byte("r2"), t2), store.Diff{Added: []store.Entry{d}, Removed: []store.Entry{b}})
	id3 := mustSave(t, s, NewSnapshot("wolfi", "x86_64", id2, 3, []byte("r3"), t3), store.Diff{Added: []store.Entry{c2}, Removed: []store.Entry{c}})

	latest, err := s.LatestSnapshot(ctx, "wolfi", "x86_64")
	if err != nil {
		t.Fatalf("LatestSnapshot = %v", err)
	}
	if latest.ID != id3 || latest.Parent != id2 || string(latest.Raw) != "r3" {
		t.Errorf("LatestSnapshot = id %d parent %d raw %q; want id %d parent %d raw %q", latest.ID, latest.Parent, latest.Raw, id3, id2, "r3")
	}
	tests := []struct {
		name, pkg, version string
		want               []record
	}{
		{"never removed", "a", "1.0-r0", []record{{"wolfi", "x86_64", "a", "1.0-r0", a.Checksum.String(), id1, 0, t1, t3, time.Time{}}}},
		{"removed in second", "b", "1.0-r0", []record{{"wolfi", "x86_64", "b", "1.0-r0", b.Checksum.String(), id1, id2, t1, t1, t2}}},
		{"checksum changed", "c", "1.0-r0", []record{
			{"wolfi", "x86_64", "c", "1.0-r0", c.Checksum.String(), id1, id3, t1, t2, t3},
			{"wolfi", "x86_64", "c", "1.0-r0", c2.Checksum.String(), id3, 0, t3, t3, time.Time{}},
		}},
		{"added in second", "d", "2.0-r0", []record{{"wolfi", "x86_64", "d", "2.0-r0", d.Checksum.String(), id2, 0, t2, t3, time.Time{}}}},
		{"unknown version", "d", "1.0-r0", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.EntryHistory(ctx, "wolfi", "x86_64", tc.pkg, tc.version)
			if err != nil {
				t.Fatalf("EntryHistory = %v", err)
			}
			if diff := cmp.Diff(tc.want, records(got), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("EntryHistory(%s %s) mismatch (-want +got):\n%s", tc.pkg, tc.version, diff)
			}
		})
	}
	byC, err := s.EntriesByChecksum(ctx, c.Checksum)
	if err != nil || len(byC) != 1 || byC[0].Current() || byC[0].LeftSnapshot != id3 {
		t.Errorf("EntriesByChecksum(c1) = %+v, %v; want one left record", byC, err)
	}
	_, err = s.EntriesByChecksum(ctx, apk.Checksum{})
	wantErr(t, "EntriesByChecksum(zero)", err, store.ErrInvalidArgument)
	seen, err := s.SeenEntries(ctx, "wolfi", "x86_64")
	if err != nil || len(seen) != 5 {
		t.Errorf("SeenEntries = %d records, %v; want 5", len(seen), err)
	}
	current := 0
	for _, r := range seen {
		if r.Current() {
			current++
		}
	}
	if current != latest.EntryCount {
		t.Errorf("SeenEntries: %d current, want the latest entry count %d", current, latest.EntryCount)
	}
}

func testSnapshotEntryReappears(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	a := store.Entry{Name: "a", Version: "1", Checksum: Checksum("a")}
	id1 := mustSave(t, s, NewSnapshot("r", "x86_64", 0, 1, []byte("1"), t0), store.Diff{Added: []store.Entry{a}})
	id2 := mustSave(t, s, NewSnapshot("r", "x86_64", id1, 0, []byte("2"), t0.Add(time.Minute)), store.Diff{Removed: []store.Entry{a}})
	id3 := mustSave(t, s, NewSnapshot("r", "x86_64", id2, 1, []byte("3"), t0.Add(2*time.Minute)), store.Diff{Added: []store.Entry{a}})
	got, err := s.EntryHistory(ctx, "r", "x86_64", "a", "1")
	if err != nil {
		t.Fatalf("EntryHistory = %v", err)
	}
	want := []record{
		{"r", "x86_64", "a", "1", a.Checksum.String(), id1, id2, t0, t0, t0.Add(time.Minute)},
		{"r", "x86_64", "a", "1", a.Checksum.String(), id3, 0, t0.Add(2 * time.Minute), t0.Add(2 * time.Minute), time.Time{}},
	}
	if diff := cmp.Diff(want, records(got)); diff != "" {
		t.Errorf("EntryHistory mismatch (-want +got):\n%s", diff)
	}
}

func testSnapshotStaleParentConflict(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	e := Entries(3, 2)
	id1 := mustSave(t, s, NewSnapshot("wolfi", "x86_64", 0, 3, []byte("1"), t0), store.Diff{Added: e})
	extra := store.Entry{Name: "x", Version: "1", Checksum: Checksum("x")}
	_, err := s.SaveSnapshot(ctx, NewSnapshot("wolfi", "x86_64", 0, 1, []byte("again"), t0), store.Diff{Added: []store.Entry{extra}})
	wantErr(t, "second first snapshot", err, store.ErrConflict)
	id2 := mustSave(t, s, NewSnapshot("wolfi", "x86_64", id1, 4, []byte("2"), t0.Add(time.Minute)), store.Diff{Added: []store.Entry{extra}})
	_, err = s.SaveSnapshot(ctx, NewSnapshot("wolfi", "x86_64", id1, 2, []byte("3"), t0.Add(2*time.Minute)), store.Diff{Removed: e[:1]})
	wantErr(t, "stale parent", err, store.ErrConflict)
	got, err := s.LatestSnapshotID(ctx, "wolfi", "x86_64")
	if err != nil || got != id2 {
		t.Errorf("LatestSnapshotID = %d, %v; want %d", got, err, id2)
	}
	hist, err := s.EntryHistory(ctx, "wolfi", "x86_64", e[0].Name, e[0].Version)
	if err != nil || len(hist) != 1 || !hist[0].Current() {
		t.Errorf("entry removed by the refused snapshot: history %+v, %v; want current", hist, err)
	}
	if found, _ := s.SnapshotsBySHA256(ctx, "wolfi", "x86_64", SHA256([]byte("3"))); len(found) != 0 {
		t.Errorf("refused snapshot was stored: %+v", found)
	}
}

func testSnapshotInvalidWritesNothing(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	e := Entries(4, 3)
	id1 := mustSave(t, s, NewSnapshot("wolfi", "x86_64", 0, 4, []byte("1"), t0), store.Diff{Added: e})
	fresh := store.Entry{Name: "new", Version: "1", Checksum: Checksum("new")}
	next := func(count int) store.Snapshot {
		return NewSnapshot("wolfi", "x86_64", id1, count, []byte("bad"), t0.Add(time.Hour))
	}
	tests := []struct {
		name    string
		snap    store.Snapshot
		diff    store.Diff
		wantErr error
	}{
		{"empty repository", func() store.Snapshot { s := next(5); s.Repository = ""; return s }(), store.Diff{Added: []store.Entry{fresh}}, store.ErrInvalidArgument},
		{"empty arch", func() store.Snapshot { s := next(5); s.Arch = ""; return s }(), store.Diff{Added: []store.Entry{fresh}}, store.ErrInvalidArgument},
		{"bad sha256", func() store.Snapshot { s := next(5); s.SHA256 = "abc"; return s }(), store.Diff{Added: []store.Entry{fresh}}, store.ErrInvalidArgument},
		{"no raw bytes", func() store.Snapshot { s := next(5); s.Raw = nil; return s }(), store.Diff{Added: []store.Entry{fresh}}, store.ErrInvalidArgument},
		{"zero fetch time", func() store.Snapshot { s := next(5); s.FetchedAt = time.Time{}; return s }(), store.Diff{Added: []store.Entry{fresh}}, store.ErrInvalidArgument},
		{"zero checksum", next(5), store.Diff{Added: []store.Entry{{Name: "z", Version: "1"}}}, store.ErrInvalidArgument},
		{"count does not match diff", next(7), store.Diff{Added: []store.Entry{fresh}}, store.ErrInvalidArgument},
		{"adds a current entry", next(5), store.Diff{Added: []store.Entry{e[0]}}, store.ErrConflict},
		{"adds an entry twice", next(6), store.Diff{Added: []store.Entry{fresh, fresh}}, store.ErrConflict},
		{"removes an unknown entry", next(4), store.Diff{Added: []store.Entry{fresh}, Removed: []store.Entry{{Name: "nope", Version: "1", Checksum: Checksum("nope")}}}, store.ErrConflict},
		{"removes with another checksum", next(4), store.Diff{Added: []store.Entry{fresh}, Removed: []store.Entry{{Name: e[1].Name, Version: e[1].Version, Checksum: Checksum("other")}}}, store.ErrConflict},
		{"first snapshot removes", NewSnapshot("other", "x86_64", 0, 0, []byte("x"), t0), store.Diff{Removed: []store.Entry{fresh}}, store.ErrInvalidArgument},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.SaveSnapshot(ctx, tc.snap, tc.diff)
			wantErr(t, "SaveSnapshot", err, tc.wantErr)
			got, err := s.LatestSnapshotID(ctx, "wolfi", "x86_64")
			if err != nil || got != id1 {
				t.Errorf("after refused save: LatestSnapshotID = %d, %v; want %d", got, err, id1)
			}
			seen, err := s.SeenEntries(ctx, "wolfi", "x86_64")
			if err != nil || len(seen) != 4 {
				t.Errorf("after refused save: SeenEntries = %d, %v; want 4", len(seen), err)
			}
			for _, r := range seen {
				if !r.Current() {
					t.Errorf("after refused save: %s %s left", r.Name, r.Version)
				}
			}
		})
	}
	// The store still accepts a correct save afterwards.
	mustSave(t, s, next(5), store.Diff{Added: []store.Entry{fresh}})
}

func testSnapshotConcurrentSaves(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	id1 := mustSave(t, s, NewSnapshot("wolfi", "x86_64", 0, 10, []byte("base"), t0), store.Diff{Added: Entries(10, 4)})
	const n = 6
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		wins      []int64
		conflicts int
		others    []error
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := store.Entry{Name: fmt.Sprintf("racer-%d", i), Version: "1", Checksum: Checksum(fmt.Sprint(i))}
			id, err := s.SaveSnapshot(ctx, NewSnapshot("wolfi", "x86_64", id1, 11, []byte(fmt.Sprint("racer", i)), t0.Add(time.Minute)), store.Diff{Added: []store.Entry{e}})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins = append(wins, id)
			case errors.Is(err, store.ErrConflict):
				conflicts++
			default:
				others = append(others, err)
			}
		}()
	}
	wg.Wait()
	if len(wins) != 1 || conflicts != n-1 || len(others) != 0 {
		t.Fatalf("concurrent saves on one parent: %d won, %d conflicts, other errors %v; want 1 and %d", len(wins), conflicts, others, n-1)
	}
	latest, err := s.LatestSnapshot(ctx, "wolfi", "x86_64")
	if err != nil || latest.ID != wins[0] || latest.EntryCount != 11 {
		t.Errorf("LatestSnapshot = id %d count %d, %v; want id %d count 11", latest.ID, latest.EntryCount, err, wins[0])
	}
	seen, err := s.SeenEntries(ctx, "wolfi", "x86_64")
	if err != nil || len(seen) != 11 {
		t.Errorf("SeenEntries = %d, %v; want 11 (base + the winner's entry)", len(seen), err)
	}
}

func testSnapshotConfirmFresh(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	a := store.Entry{Name: "a", Version: "1", Checksum: Checksum("a")}
	b := store.Entry{Name: "b", Version: "1", Checksum: Checksum("b")}
	id1 := mustSave(t, s, NewSnapshot("wolfi", "x86_64", 0, 2, []byte("1"), t0), store.Diff{Added: []store.Entry{a, b}})
	tests := []struct {
		name string
		at   time.Time
		want time.Time
	}{
		{"forward", t0.Add(5 * time.Minute), t0.Add(5 * time.Minute)},
		{"older is ignored", t0.Add(time.Minute), t0.Add(5 * time.Minute)},
		{"same again (idempotent)", t0.Add(5 * time.Minute), t0.Add(5 * time.Minute)},
		{"forward again", t0.Add(10 * time.Minute), t0.Add(10 * time.Minute)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := s.ConfirmFresh(ctx, id1, tc.at); err != nil {
				t.Fatalf("ConfirmFresh = %v", err)
			}
			got, err := s.LatestSnapshot(ctx, "wolfi", "x86_64")
			if err != nil {
				t.Fatalf("LatestSnapshot = %v", err)
			}
			if !got.ConfirmedAt.Equal(tc.want) || !got.FetchedAt.Equal(t0) {
				t.Errorf("fetched %v confirmed %v; want fetched %v confirmed %v", got.FetchedAt, got.ConfirmedAt, t0, tc.want)
			}
			hist, err := s.EntryHistory(ctx, "wolfi", "x86_64", "a", "1")
			if err != nil || len(hist) != 1 || !hist[0].LastSeen.Equal(tc.want) {
				t.Errorf("current entry LastSeen = %+v, %v; want %v", hist, err, tc.want)
			}
		})
	}
	// An entry dropped by the next snapshot keeps the last confirmation of
	// the snapshot that still listed it.
	mustSave(t, s, NewSnapshot("wolfi", "x86_64", id1, 1, []byte("2"), t0.Add(time.Hour)), store.Diff{Removed: []store.Entry{b}})
	hist, err := s.EntryHistory(ctx, "wolfi", "x86_64", "b", "1")
	if err != nil || len(hist) != 1 || !hist[0].LastSeen.Equal(t0.Add(10*time.Minute)) || !hist[0].LeftAt.Equal(t0.Add(time.Hour)) {
		t.Errorf("dropped entry = %+v, %v; want LastSeen %v LeftAt %v", hist, err, t0.Add(10*time.Minute), t0.Add(time.Hour))
	}
}

func testSnapshotsBySHA256(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	a := store.Entry{Name: "a", Version: "1", Checksum: Checksum("a")}
	a2 := store.Entry{Name: "a", Version: "2", Checksum: Checksum("a2")}
	id1 := mustSave(t, s, NewSnapshot("wolfi", "x86_64", 0, 1, []byte("old"), t0), store.Diff{Added: []store.Entry{a}})
	id2 := mustSave(t, s, NewSnapshot("wolfi", "x86_64", id1, 1, []byte("new"), t0.Add(time.Hour)), store.Diff{Added: []store.Entry{a2}, Removed: []store.Entry{a}})
	id3 := mustSave(t, s, NewSnapshot("wolfi", "x86_64", id2, 1, []byte("old"), t0.Add(2*time.Hour)), store.Diff{Added: []store.Entry{a}, Removed: []store.Entry{a2}})
	tests := []struct {
		name, repo, arch, sha string
		want                  []int64
	}{
		{"twice, newest first", "wolfi", "x86_64", SHA256([]byte("old")), []int64{id3, id1}},
		{"upper-case hex", "wolfi", "x86_64", strings.ToUpper(SHA256([]byte("new"))), []int64{id2}},
		{"unknown", "wolfi", "x86_64", SHA256([]byte("never")), nil},
		{"other arch", "wolfi", "aarch64", SHA256([]byte("old")), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.SnapshotsBySHA256(ctx, tc.repo, tc.arch, tc.sha)
			if err != nil {
				t.Fatalf("SnapshotsBySHA256 = %v", err)
			}
			var ids []int64
			for _, sn := range got {
				ids = append(ids, sn.ID)
				if sn.Raw != nil {
					t.Errorf("SnapshotsBySHA256 returned raw bytes for %d", sn.ID)
				}
			}
			if diff := cmp.Diff(tc.want, ids); diff != "" {
				t.Errorf("SnapshotsBySHA256 ids (-want +got):\n%s", diff)
			}
		})
	}
}

func testStreamsIndependent(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	e := store.Entry{Name: "busybox", Version: "1.36.1-r0", Checksum: Checksum("bb")}
	idX := mustSave(t, s, NewSnapshot("alpine", "x86_64", 0, 1, []byte("x"), t0), store.Diff{Added: []store.Entry{e}})
	idA := mustSave(t, s, NewSnapshot("alpine", "aarch64", 0, 1, []byte("a"), t0), store.Diff{Added: []store.Entry{e}})
	idW := mustSave(t, s, NewSnapshot("wolfi", "x86_64", 0, 0, []byte("w"), t0), store.Diff{})
	for _, tc := range []struct{ repo, arch, raw string }{{"alpine", "x86_64", "x"}, {"alpine", "aarch64", "a"}, {"wolfi", "x86_64", "w"}} {
		got, err := s.LatestSnapshot(ctx, tc.repo, tc.arch)
		if err != nil || string(got.Raw) != tc.raw {
			t.Errorf("LatestSnapshot(%s/%s) raw %q, %v; want %q", tc.repo, tc.arch, got.Raw, err, tc.raw)
		}
	}
	// A removal in one stream leaves the other alone.
	mustSave(t, s, NewSnapshot("alpine", "x86_64", idX, 0, []byte("x2"), t0.Add(time.Hour)), store.Diff{Removed: []store.Entry{e}})
	byC, err := s.EntriesByChecksum(ctx, e.Checksum)
	if err != nil {
		t.Fatalf("EntriesByChecksum = %v", err)
	}
	got := map[string]bool{}
	for _, r := range byC {
		got[r.Repository+"/"+r.Arch] = r.Current()
	}
	if diff := cmp.Diff(map[string]bool{"alpine/x86_64": false, "alpine/aarch64": true}, got); diff != "" {
		t.Errorf("EntriesByChecksum current by stream (-want +got):\n%s", diff)
	}
	if id, _ := s.LatestSnapshotID(ctx, "alpine", "aarch64"); id != idA {
		t.Errorf("LatestSnapshotID(alpine/aarch64) = %d, want %d", id, idA)
	}
	if id, _ := s.LatestSnapshotID(ctx, "wolfi", "x86_64"); id != idW {
		t.Errorf("LatestSnapshotID(wolfi/x86_64) = %d, want %d", id, idW)
	}
}

func testLookupEntry(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	e := store.Entry{Name: "zlib", Version: "1.3.1-r0", Checksum: Checksum("zlib")}
	other := store.Entry{Name: "zlib", Version: "1.3.1-r1", Checksum: Checksum("zlib r1")}
	mustSave(t, s, NewSnapshot("wolfi", "x86_64", 0, 2, []byte("w"), t0), store.Diff{Added: []store.Entry{e, other}})
	mustSave(t, s, NewSnapshot("mirror", "x86_64", 0, 1, []byte("m"), t0), store.Diff{Added: []store.Entry{e}})
	mustSave(t, s, NewSnapshot("wolfi", "aarch64", 0, 1, []byte("a"), t0), store.Diff{Added: []store.Entry{e}})
	tests := []struct {
		name, pkg, version, arch string
		want                     []string
	}{
		{"two repositories", "zlib", "1.3.1-r0", "x86_64", []string{"mirror/x86_64", "wolfi/x86_64"}},
		{"other arch", "zlib", "1.3.1-r0", "aarch64", []string{"wolfi/aarch64"}},
		{"other version", "zlib", "1.3.1-r1", "x86_64", []string{"wolfi/x86_64"}},
		{"unknown", "zlib", "9", "x86_64", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.LookupEntry(ctx, tc.pkg, tc.version, tc.arch)
			if err != nil {
				t.Fatalf("LookupEntry = %v", err)
			}
			var where []string
			for _, r := range got {
				if r.Name != tc.pkg || r.Version != tc.version || r.Arch != tc.arch {
					t.Errorf("LookupEntry returned %+v", r)
				}
				where = append(where, r.Repository+"/"+r.Arch)
			}
			sort.Strings(where)
			if diff := cmp.Diff(tc.want, where); diff != "" {
				t.Errorf("LookupEntry(%s %s %s) (-want +got):\n%s", tc.pkg, tc.version, tc.arch, diff)
			}
		})
	}
}

func testTimes(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	berlin := time.FixedZone("CEST", 2*3600)
	at := time.Date(2026, 5, 1, 14, 0, 0, 123456789, berlin)
	want := time.Date(2026, 5, 1, 12, 0, 0, 123456000, time.UTC)
	id := mustSave(t, s, NewSnapshot("wolfi", "x86_64", 0, 0, []byte("t"), at), store.Diff{})
	got, err := s.Snapshot(ctx, id)
	if err != nil {
		t.Fatalf("Snapshot = %v", err)
	}
	if got.FetchedAt != want || got.ConfirmedAt != want {
		t.Errorf("times read back as %v / %v; want %v (UTC, microseconds)", got.FetchedAt, got.ConfirmedAt, want)
	}
	aid, err := s.AppendAttestation(ctx, Attestation("", at, "t", 1))
	if err != nil {
		t.Fatalf("AppendAttestation = %v", err)
	}
	a, err := s.Attestation(ctx, aid)
	if err != nil || a.Time != want {
		t.Errorf("attestation time = %v, %v; want %v", a.Time, err, want)
	}
}

func testLedgerAppendGet(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	in := Attestation("", t0, "image-1", 50)
	in.Subjects = append(in.Subjects, store.Subject{Name: "registry.example.org/app:arm64", Digest: map[string]string{"sha256": SHA256([]byte("arm")), "sha512": "ab"}})
	in.Packages[3].DataHash = ""
	in.Packages[4].Checksum = apk.Checksum{Alg: apk.ChecksumSHA256, Digest: make([]byte, 32)}
	id, err := s.AppendAttestation(ctx, in)
	if err != nil {
		t.Fatalf("AppendAttestation = %v", err)
	}
	if len(id) != 26 {
		t.Errorf("generated id %q, want 26 characters", id)
	}
	got, err := s.Attestation(ctx, id)
	if err != nil {
		t.Fatalf("Attestation(%s) = %v", id, err)
	}
	want := in
	want.ID = id
	if diff := cmp.Diff(want, got, checksumCmp); diff != "" {
		t.Errorf("Attestation round trip (-want +got):\n%s", diff)
	}
	_, err = s.Attestation(ctx, "01NOSUCHENTRY0000000000000")
	wantErr(t, "Attestation(unknown)", err, store.ErrNotFound)

	// An entry without packages, subjects or predicates (a refusal record).
	bare := store.Attestation{ID: "bare", Time: t0, Builder: "anonymous", Verdict: "CHECKSUM_MISMATCH"}
	if _, err := s.AppendAttestation(ctx, bare); err != nil {
		t.Fatalf("AppendAttestation(bare) = %v", err)
	}
	gotBare, err := s.Attestation(ctx, "bare")
	if err != nil {
		t.Fatalf("Attestation(bare) = %v", err)
	}
	if diff := cmp.Diff(bare, gotBare, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("bare round trip (-want +got):\n%s", diff)
	}

	// Two names of one image: subjects sharing a digest.
	twin := Attestation("twin", t0, "twin-image", 2)
	twin.Subjects = append(twin.Subjects, store.Subject{Name: "registry.example.org/app:v2", Digest: twin.Subjects[0].Digest})
	if _, err := s.AppendAttestation(ctx, twin); err != nil {
		t.Fatalf("AppendAttestation(two subjects, one digest) = %v", err)
	}
	list, _, err := s.ListAttestations(ctx, store.AttestationQuery{SubjectDigest: "sha256:" + twin.Subjects[0].Digest["sha256"]})
	if err != nil || len(list) != 1 || len(list[0].Subjects) != 2 {
		t.Errorf("ListAttestations(shared digest) = %d entries, %v; want the one entry with both subjects", len(list), err)
	}
}

// testLedgerLarge appends an entry as large as the server accepts by default
// (10,000 packages per request), more than one SQL statement can bind, and
// finds it whole and by a package near the end.
func testLedgerLarge(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	in := Attestation("large", t0, "image-large", 10000)
	if _, err := s.AppendAttestation(ctx, in); err != nil {
		t.Fatalf("AppendAttestation(10,000 packages) = %v", err)
	}
	got, err := s.Attestation(ctx, "large")
	if err != nil {
		t.Fatalf("Attestation(large) = %v", err)
	}
	if diff := cmp.Diff(in, got, checksumCmp); diff != "" {
		t.Errorf("10,000-package round trip (-want +got):\n%s", diff)
	}
	last := in.Packages[len(in.Packages)-1]
	for _, q := range []store.AttestationQuery{
		{Checksum: last.Checksum},
		{PackageName: last.Name, PackageVersion: last.Version},
	} {
		list, _, err := s.ListAttestations(ctx, q)
		if err != nil || len(list) != 1 || list[0].ID != "large" {
			t.Errorf("ListAttestations(%+v) = %d entries, %v; want the large one", q, len(list), err)
		}
	}
}

func testLedgerDuplicate(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	first := Attestation("same-id", t0, "one", 2)
	if _, err := s.AppendAttestation(ctx, first); err != nil {
		t.Fatalf("AppendAttestation = %v", err)
	}
	_, err := s.AppendAttestation(ctx, Attestation("same-id", t0.Add(time.Second), "two", 3))
	wantErr(t, "duplicate id", err, store.ErrConflict)
	got, err := s.Attestation(ctx, "same-id")
	if err != nil {
		t.Fatalf("Attestation = %v", err)
	}
	if diff := cmp.Diff(first, got, checksumCmp); diff != "" {
		t.Errorf("first entry changed by the refused duplicate (-want +got):\n%s", diff)
	}
}

func testLedgerInvalid(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	tests := []struct {
		name    string
		a       store.Attestation
		wantErr error
	}{
		{"zero time", Attestation("a", time.Time{}, "x", 1), store.ErrInvalidArgument},
		{"zero checksum", func() store.Attestation {
			a := Attestation("b", t0, "x", 2)
			a.Packages[1].Checksum = apk.Checksum{}
			return a
		}(), store.ErrInvalidArgument},
		{"bad digest algorithm", func() store.Attestation {
			a := Attestation("c", t0, "x", 1)
			a.Subjects[0].Digest = map[string]string{"": "ab"}
			return a
		}(), store.ErrInvalidArgument},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.AppendAttestation(ctx, tc.a)
			wantErr(t, "AppendAttestation", err, tc.wantErr)
			_, err = s.Attestation(ctx, tc.a.ID)
			wantErr(t, "Attestation after refusal", err, store.ErrNotFound)
		})
	}
}

func ids(as []store.Attestation) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.ID)
	}
	return out
}

func testLedgerQueries(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	// e1..e4, one minute apart; e1 and e3 share a subject.
	mk := func(id string, minute int, subject string, pkgs ...store.AttestedPackage) {
		a := Attestation(id, t0.Add(time.Duration(minute)*time.Minute), subject, 0)
		a.Packages = pkgs
		if _, err := s.AppendAttestation(ctx, a); err != nil {
			t.Fatalf("AppendAttestation(%s) = %v", id, err)
		}
	}
	pkg := func(name, version, sum string) store.AttestedPackage {
		return store.AttestedPackage{Name: name, Version: version, Arch: "x86_64", Repository: "wolfi", Checksum: Checksum(sum), Verdict: "VERIFIED"}
	}
	mk("e1", 1, "img-a", pkg("openssl", "3.3.0-r0", "ossl30"), pkg("zlib", "1.3-r0", "z13"))
	mk("e2", 2, "img-b", pkg("openssl", "3.3.1-r0", "ossl31"))
	mk("e3", 3, "img-a", pkg("zlib", "1.3-r0", "z13"))
	mk("e4", 4, "img-c", pkg("busybox", "1.36-r0", "bb"))
	tests := []struct {
		name    string
		q       store.AttestationQuery
		want    []string
		wantErr error
	}{
		{"all, newest first", store.AttestationQuery{}, []string{"e4", "e3", "e2", "e1"}, nil},
		{"by subject digest", store.AttestationQuery{SubjectDigest: "sha256:" + SHA256([]byte("img-a"))}, []string{"e3", "e1"}, nil},
		{"by subject digest, upper case", store.AttestationQuery{SubjectDigest: "sha256:" + strings.ToUpper(SHA256([]byte("img-b")))}, []string{"e2"}, nil},
		{"by subject digest, other algorithm", store.AttestationQuery{SubjectDigest: "sha512:" + SHA256([]byte("img-a"))}, nil, nil},
		{"by package name", store.AttestationQuery{PackageName: "openssl"}, []string{"e2", "e1"}, nil},
		{"by package name and version", store.AttestationQuery{PackageName: "openssl", PackageVersion: "3.3.0-r0"}, []string{"e1"}, nil},
		{"by checksum", store.AttestationQuery{Checksum: Checksum("z13")}, []string{"e3", "e1"}, nil},
		{"by time range", store.AttestationQuery{Since: t0.Add(2 * time.Minute), Until: t0.Add(4 * time.Minute)}, []string{"e3", "e2"}, nil},
		{"combined", store.AttestationQuery{PackageName: "zlib", Since: t0.Add(2 * time.Minute)}, []string{"e3"}, nil},
		{"nothing matches", store.AttestationQuery{PackageName: "nope"}, nil, nil},
		{"version without name", store.AttestationQuery{PackageVersion: "1"}, nil, store.ErrInvalidArgument},
		{"malformed subject digest", store.AttestationQuery{SubjectDigest: "deadbeef"}, nil, store.ErrInvalidArgument},
		{"malformed page token", store.AttestationQuery{PageToken: "!!"}, nil, store.ErrInvalidArgument},
		{"foreign page token", store.AttestationQuery{PageToken: "ZTE6MTI"}, nil, store.ErrInvalidArgument},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, next, err := s.ListAttestations(ctx, tc.q)
			if tc.wantErr != nil {
				wantErr(t, "ListAttestations", err, tc.wantErr)
				return
			}
			if err != nil {
				t.Fatalf("ListAttestations = %v", err)
			}
			if next != "" {
				t.Errorf("next page token %q, want none", next)
			}
			if diff := cmp.Diff(tc.want, ids(got)); diff != "" {
				t.Errorf("ListAttestations ids (-want +got):\n%s", diff)
			}
		})
	}
}

func testLedgerPaging(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	var want []string
	for i := range 25 {
		// Pairs share a timestamp so the id breaks ties.
		id := fmt.Sprintf("p%02d", i)
		if _, err := s.AppendAttestation(ctx, Attestation(id, t0.Add(time.Duration(i/2)*time.Second), "paged", 1)); err != nil {
			t.Fatalf("AppendAttestation = %v", err)
		}
		want = append([]string{id}, want...)
	}
	var got []string
	tok := ""
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("paging does not end")
		}
		page, next, err := s.ListAttestations(ctx, store.AttestationQuery{PageSize: 10, PageToken: tok, Checksum: Checksum("paged/0")})
		if err != nil {
			t.Fatalf("ListAttestations page %d = %v", pages, err)
		}
		if len(page) > 10 {
			t.Fatalf("page %d has %d entries, want at most 10", pages, len(page))
		}
		got = append(got, ids(page)...)
		if pages == 0 {
			// Appending a newer entry while paging changes nothing for the
			// pages still to come.
			if _, err := s.AppendAttestation(ctx, Attestation("late", t0.Add(time.Hour), "paged", 1)); err != nil {
				t.Fatalf("AppendAttestation(late) = %v", err)
			}
		}
		if next == "" {
			break
		}
		tok = next
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("paged ids (-want +got):\n%s", diff)
	}
}

func testRevocations(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	c1, c2 := Checksum("bad-1"), Checksum("bad-2")
	v0, err := s.RevocationsVersion(ctx)
	if err != nil {
		t.Fatalf("RevocationsVersion = %v", err)
	}
	_, err = s.Revocation(ctx, c1)
	wantErr(t, "Revocation before revoke", err, store.ErrNotFound)
	r1 := store.Revocation{Checksum: c1, Reason: "CVE-2026-0001", By: "alice", At: t0}
	r2 := store.Revocation{Checksum: c2, Reason: "compromised mirror", By: "bob", At: t0.Add(time.Minute)}
	tests := []struct {
		name    string
		op      func() error
		wantErr error
		wantSet []store.Revocation
		bumped  bool
	}{
		{"revoke", func() error { return s.Revoke(ctx, r1) }, nil, []store.Revocation{r1}, true},
		{"revoke again conflicts", func() error { return s.Revoke(ctx, store.Revocation{Checksum: c1, Reason: "again", By: "eve", At: t0}) }, store.ErrConflict, []store.Revocation{r1}, false},
		{"revoke another", func() error { return s.Revoke(ctx, r2) }, nil, []store.Revocation{r1, r2}, true},
		{"revoke zero checksum", func() error { return s.Revoke(ctx, store.Revocation{Reason: "x"}) }, store.ErrInvalidArgument, []store.Revocation{r1, r2}, false},
		{"unrevoke", func() error { return s.Unrevoke(ctx, c1, "alice", t0.Add(time.Hour)) }, nil, []store.Revocation{r2}, true},
		{"unrevoke again", func() error { return s.Unrevoke(ctx, c1, "alice", t0.Add(time.Hour)) }, store.ErrNotFound, []store.Revocation{r2}, false},
		{"revoke after unrevoke", func() error { return s.Revoke(ctx, r1) }, nil, []store.Revocation{r1, r2}, true},
	}
	prev := v0
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.op()
			if tc.wantErr != nil {
				wantErr(t, tc.name, err, tc.wantErr)
			} else if err != nil {
				t.Fatalf("%s = %v", tc.name, err)
			}
			set, err := s.Revocations(ctx)
			if err != nil {
				t.Fatalf("Revocations = %v", err)
			}
			if diff := cmp.Diff(tc.wantSet, set.Revocations, checksumCmp); diff != "" {
				t.Errorf("Revocations (-want +got):\n%s", diff)
			}
			v, err := s.RevocationsVersion(ctx)
			if err != nil || v != set.Version {
				t.Errorf("RevocationsVersion = %d, %v; want %d (as in Revocations)", v, err, set.Version)
			}
			if bumped := v > prev; bumped != tc.bumped {
				t.Errorf("version %d → %d; want bumped = %v", prev, v, tc.bumped)
			}
			prev = v
			for _, r := range tc.wantSet {
				got, err := s.Revocation(ctx, r.Checksum)
				if err != nil {
					t.Errorf("Revocation(%s) = %v", r.Checksum, err)
				} else if diff := cmp.Diff(r, got, checksumCmp); diff != "" {
					t.Errorf("Revocation(%s) (-want +got):\n%s", r.Checksum, diff)
				}
			}
		})
	}
}

func testEvents(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	evs := []store.Event{
		{Kind: store.EventRefreshFailure, Repository: "wolfi", Arch: "x86_64", Time: t0, Detail: "connection refused"},
		{Kind: store.EventEquivocation, Repository: "wolfi", Arch: "x86_64", Time: t0.Add(time.Minute), SHA256: SHA256([]byte("i")),
			Name: "zlib", Version: "1.3-r0", Checksum: Checksum("old"), OtherChecksum: Checksum("new"), Detail: "checksum changed", Evidence: []byte("raw index")},
		{Kind: store.EventRollback, Repository: "wolfi", Arch: "aarch64", Time: t0.Add(2 * time.Minute), Name: "openssl", Version: "3.3.1-r0"},
		{Kind: store.EventEquivocationAccepted, Repository: "alpine", Arch: "x86_64", Time: t0.Add(3 * time.Minute), Detail: "accepted by alice"},
	}
	var wantIDs []int64
	for i, e := range evs {
		id, err := s.AppendEvent(ctx, e)
		if err != nil {
			t.Fatalf("AppendEvent(%d) = %v", i, err)
		}
		if len(wantIDs) > 0 && id <= wantIDs[len(wantIDs)-1] {
			t.Errorf("event ids do not grow: %d after %d", id, wantIDs[len(wantIDs)-1])
		}
		wantIDs = append(wantIDs, id)
		evs[i].ID = id
	}
	_, err := s.AppendEvent(ctx, store.Event{Repository: "wolfi", Time: t0})
	wantErr(t, "AppendEvent without kind", err, store.ErrInvalidArgument)
	tests := []struct {
		name    string
		q       store.EventQuery
		want    []store.Event
		wantErr error
	}{
		{"recent", store.EventQuery{}, []store.Event{evs[3], evs[2], evs[1], evs[0]}, nil},
		{"per repository", store.EventQuery{Repository: "wolfi"}, []store.Event{evs[2], evs[1], evs[0]}, nil},
		{"per repository and arch", store.EventQuery{Repository: "wolfi", Arch: "x86_64"}, []store.Event{evs[1], evs[0]}, nil},
		{"per kind", store.EventQuery{Kind: store.EventRollback}, []store.Event{evs[2]}, nil},
		{"since", store.EventQuery{Since: t0.Add(2 * time.Minute)}, []store.Event{evs[3], evs[2]}, nil},
		{"arch without repository", store.EventQuery{Arch: "x86_64"}, nil, store.ErrInvalidArgument},
		{"malformed token", store.EventQuery{PageToken: "nope"}, nil, store.ErrInvalidArgument},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, next, err := s.ListEvents(ctx, tc.q)
			if tc.wantErr != nil {
				wantErr(t, "ListEvents", err, tc.wantErr)
				return
			}
			if err != nil || next != "" {
				t.Fatalf("ListEvents = next %q, %v", next, err)
			}
			if diff := cmp.Diff(tc.want, got, checksumCmp, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("ListEvents (-want +got):\n%s", diff)
			}
		})
	}
	var paged []store.Event
	tok := ""
	for range 5 {
		page, next, err := s.ListEvents(ctx, store.EventQuery{PageSize: 3, PageToken: tok})
		if err != nil {
			t.Fatalf("ListEvents = %v", err)
		}
		paged = append(paged, page...)
		if tok = next; tok == "" {
			break
		}
	}
	if diff := cmp.Diff([]store.Event{evs[3], evs[2], evs[1], evs[0]}, paged, checksumCmp, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("ListEvents paged (-want +got):\n%s", diff)
	}
}

func testRefreshLock(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	unlock, ok, err := s.TryLockRefresh(ctx, "wolfi", "x86_64")
	if err != nil || !ok {
		t.Fatalf("TryLockRefresh = %v, %v; want ok", ok, err)
	}
	if _, ok, err := s.TryLockRefresh(ctx, "wolfi", "x86_64"); err != nil || ok {
		t.Errorf("second TryLockRefresh = %v, %v; want not ok", ok, err)
	}
	other, ok, err := s.TryLockRefresh(ctx, "wolfi", "aarch64")
	if err != nil || !ok {
		t.Errorf("TryLockRefresh(other arch) = %v, %v; want ok", ok, err)
	} else {
		other()
	}
	unlock()
	unlock() // no-op
	again, ok, err := s.TryLockRefresh(ctx, "wolfi", "x86_64")
	if err != nil || !ok {
		t.Fatalf("TryLockRefresh after unlock = %v, %v; want ok", ok, err)
	}
	again()
	// Many goroutines: exactly one holds the lock at a time.
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		holders int
		maxHeld int
	)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				unlock, ok, err := s.TryLockRefresh(ctx, "alpine", "x86_64")
				if err != nil {
					t.Errorf("TryLockRefresh = %v", err)
					return
				}
				if !ok {
					continue
				}
				mu.Lock()
				holders++
				maxHeld = max(maxHeld, holders)
				mu.Unlock()
				time.Sleep(time.Millisecond)
				mu.Lock()
				holders--
				mu.Unlock()
				unlock()
			}
		}()
	}
	wg.Wait()
	if maxHeld != 1 {
		t.Errorf("at most %d holders at once, want 1", maxHeld)
	}
}

func testWatchSnapshots(t *testing.T, s store.Store) {
	ctx, cancel := context.WithCancel(ctxFor(t))
	ch, err := s.WatchSnapshots(ctx)
	if err != nil {
		t.Fatalf("WatchSnapshots = %v", err)
	}
	id := mustSave(t, s, NewSnapshot("wolfi", "x86_64", 0, 0, []byte("w"), t0), store.Diff{})
	select {
	case n, ok := <-ch:
		if !ok {
			t.Fatal("watch channel closed early")
		}
		if diff := cmp.Diff(store.SnapshotNotice{Repository: "wolfi", Arch: "x86_64", ID: id}, n); diff != "" {
			t.Errorf("notice (-want +got):\n%s", diff)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no notice within 10s of SaveSnapshot")
	}
	cancel()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-timeout:
			t.Fatal("watch channel not closed after cancel")
		}
	}
}

func testClosed(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	if err := s.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
	_, err := s.LatestSnapshotID(ctx, "wolfi", "x86_64")
	wantErr(t, "LatestSnapshotID after Close", err, store.ErrClosed)
	_, err = s.AppendAttestation(ctx, Attestation("", t0, "x", 1))
	wantErr(t, "AppendAttestation after Close", err, store.ErrClosed)
	_, err = s.SaveSnapshot(ctx, NewSnapshot("wolfi", "x86_64", 0, 0, []byte("w"), t0), store.Diff{})
	wantErr(t, "SaveSnapshot after Close", err, store.ErrClosed)
}

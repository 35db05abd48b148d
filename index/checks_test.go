package index

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vouchdev/vouch/store"
)

func entries(pkgs ...pkg) []store.Entry {
	out := make([]store.Entry, len(pkgs))
	for i, p := range pkgs {
		out[i] = store.Entry{Name: p.name, Version: p.version, Checksum: p.checksum()}
	}
	return out
}

func TestRollbacks(t *testing.T) {
	for _, tc := range []struct {
		name       string
		prev, next []store.Entry
		want       []rollback
	}{
		{name: "upgrade", prev: entries(pkg{name: "a", version: "1.0-r0"}), next: entries(pkg{name: "a", version: "1.1-r0"})},
		{name: "package removed", prev: entries(pkg{name: "a", version: "1.0-r0"}), next: entries(pkg{name: "b", version: "1.0-r0"})},
		{name: "old version archived, newest kept",
			prev: entries(pkg{name: "a", version: "1.0-r0"}, pkg{name: "a", version: "1.1-r0"}),
			next: entries(pkg{name: "a", version: "1.1-r0"})},
		{name: "newest dropped, older offered",
			prev: entries(pkg{name: "a", version: "1.0-r0"}, pkg{name: "a", version: "1.1-r0"}),
			next: entries(pkg{name: "a", version: "1.0-r0"}),
			want: []rollback{{name: "a", dropped: "1.1-r0", offered: "1.0-r0"}}},
		{name: "newest replaced by an older revision",
			prev: entries(pkg{name: "a", version: "1.1-r1"}),
			next: entries(pkg{name: "a", version: "1.1-r0"}),
			want: []rollback{{name: "a", dropped: "1.1-r1", offered: "1.1-r0"}}},
		{name: "newest replaced by a newer one", prev: entries(pkg{name: "a", version: "1.1-r1"}), next: entries(pkg{name: "a", version: "1.2_rc1-r0"})},
		{name: "unparsable versions are not compared", prev: entries(pkg{name: "a", version: "zzz"}), next: entries(pkg{name: "a", version: "1.0"})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := rollbacks(tc.prev, tc.next)
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(rollback{})); diff != "" {
				t.Errorf("rollbacks (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDiffEntries(t *testing.T) {
	a, b, c := pkg{name: "a", version: "1"}, pkg{name: "b", version: "1"}, pkg{name: "c", version: "1"}
	b2 := pkg{name: "b", version: "1", salt: "x"}
	got := diffEntries(entries(a, b), entries(b2, c))
	want := store.Diff{Added: entries(b2, c), Removed: entries(b, a)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("diffEntries (-want +got):\n%s", diff)
	}
}

// TestEquivocationThroughHistory: an entry that left the index and comes
// back with another checksum is an equivocation, whether the refresh asks
// the store entry by entry (few new entries) or reads the whole history
// (many).
func TestEquivocationThroughHistory(t *testing.T) {
	for _, tt := range []struct {
		name  string
		extra int // other new entries in the returning index
	}{
		{"few new entries: one query each", 0},
		{"many new entries: the whole history", 400},
	} {
		t.Run(tt.name, func(t *testing.T) {
			key := testKey(t, "test.rsa.pub")
			srv := newServer(t, false)
			clk := newClock()
			c := newCache(t, testConfig(openStore(t, ""), clk, key.Keyring(), srv.URL))
			base := []pkg{{name: "foo", version: "1.0-r0"}, {name: "bar", version: "1.0-r0"}}
			srv.serve(signedIndex(t, key, testArch, "v1", base))
			if r := refresh(t, c); r.Outcome != Updated {
				t.Fatalf("v1: %+v", r)
			}
			// foo 1.0-r0 leaves the index (a newer one replaces it).
			clk.Advance(time.Minute)
			srv.serve(signedIndex(t, key, testArch, "v2", []pkg{{name: "foo", version: "1.1-r0"}, base[1]}))
			if r := refresh(t, c); r.Outcome != Updated {
				t.Fatalf("v2: %+v", r)
			}
			// It comes back with another checksum, among other new entries.
			back := []pkg{{name: "foo", version: "1.1-r0"}, base[1], {name: "foo", version: "1.0-r0", salt: "rebuilt"}}
			for i := range tt.extra {
				back = append(back, pkg{name: fmt.Sprintf("new-%04d", i), version: "1.0-r0"})
			}
			clk.Advance(time.Minute)
			srv.serve(signedIndex(t, key, testArch, "v3", back))
			r := refresh(t, c)
			if r.Outcome != Refused || !errors.Is(r.Err, ErrEquivocation) {
				t.Errorf("v3 = %v, %v; want Refused with ErrEquivocation", r.Outcome, r.Err)
			}
		})
	}
}

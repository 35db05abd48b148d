package index

import (
	"testing"

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

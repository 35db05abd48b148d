package sqlite_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

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

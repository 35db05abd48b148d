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

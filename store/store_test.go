package store_test

import (
	"context"
	"errors"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/vouchdev/vouch/store"
)

func TestNewID(t *testing.T) {
	base := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	var ids []string
	for i := range 100 {
		id := store.NewID(base.Add(time.Duration(i) * time.Millisecond))
		if len(id) != 26 {
			t.Fatalf("NewID = %q, want 26 characters", id)
		}
		if strings.Trim(id, "0123456789ABCDEFGHJKMNPQRSTVWXYZ") != "" {
			t.Fatalf("NewID = %q has characters outside Crockford base32", id)
		}
		ids = append(ids, id)
	}
	if !sort.StringsAreSorted(ids) {
		t.Errorf("ids of increasing milliseconds do not sort: %v", ids)
	}
	if a, b := store.NewID(base), store.NewID(base); a == b {
		t.Errorf("two ids of one millisecond are equal: %s", a)
	}
}

func TestOpenUnknownScheme(t *testing.T) {
	tests := []struct {
		name    string
		url     string
		wantErr error
	}{
		{name: "unregistered scheme", url: "mysql://db/vouch", wantErr: store.ErrInvalidArgument},
		{name: "no scheme", url: "/var/lib/vouch.db", wantErr: store.ErrInvalidArgument},
		{name: "malformed", url: "sqlite://%zz", wantErr: store.ErrInvalidArgument},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := store.Open(context.Background(), tc.url)
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("Open(%q) = %v, want %v", tc.url, err, tc.wantErr)
			}
		})
	}
}

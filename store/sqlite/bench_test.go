package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/vouchdev/vouch/store"
	"github.com/vouchdev/vouch/store/sqlite"
	"github.com/vouchdev/vouch/store/storetest"
)

func benchStore(b *testing.B) store.Store {
	b.Helper()
	s, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(b.TempDir(), "vouch.db")})
	if err != nil {
		b.Fatalf("sqlite.Open = %v", err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// Targets (docs/PERFORMANCE.md): first 186k snapshot ≤ 3 s, 1%-changed
// snapshot ≤ 0.3 s, 50-package ledger append ≤ 2 ms, lookup ≤ 100 µs.

func BenchmarkFirstSnapshot(b *testing.B) { storetest.BenchmarkFirstSnapshot(b, benchStore) }
func BenchmarkNextSnapshot(b *testing.B)  { storetest.BenchmarkNextSnapshot(b, benchStore) }
func BenchmarkLedgerAppend(b *testing.B)  { storetest.BenchmarkLedgerAppend(b, benchStore) }
func BenchmarkLookupEntry(b *testing.B)   { storetest.BenchmarkLookupEntry(b, benchStore) }

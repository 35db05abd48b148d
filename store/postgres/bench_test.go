package postgres_test

import (
	"context"
	"testing"

	"github.com/vouchdev/vouch/store"
	"github.com/vouchdev/vouch/store/postgres"
	"github.com/vouchdev/vouch/store/storetest"
)

func benchStore(b *testing.B) store.Store {
	b.Helper()
	dsn := testDSN(b)
	s, err := postgres.Open(context.Background(), postgres.Config{DSN: dsn, Schema: newSchema(b, dsn)})
	if err != nil {
		b.Fatalf("postgres.Open = %v", err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// Targets (docs/PERFORMANCE.md): first 186k snapshot ≤ 5 s, 1%-changed
// snapshot ≤ 0.3 s, lookup ≤ 100 µs; the 2 ms ledger target is SQLite's.

func BenchmarkFirstSnapshot(b *testing.B) { storetest.BenchmarkFirstSnapshot(b, benchStore) }
func BenchmarkNextSnapshot(b *testing.B)  { storetest.BenchmarkNextSnapshot(b, benchStore) }
func BenchmarkLedgerAppend(b *testing.B)  { storetest.BenchmarkLedgerAppend(b, benchStore) }
func BenchmarkLookupEntry(b *testing.B)   { storetest.BenchmarkLookupEntry(b, benchStore) }

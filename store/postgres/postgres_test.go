package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vouchdev/vouch/internal/testtools"
	"github.com/vouchdev/vouch/store"
	"github.com/vouchdev/vouch/store/postgres"
	"github.com/vouchdev/vouch/store/storetest"
)

const defaultDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// testDSN returns the DSN of the test server, skipping (failing under
// CI=true) when none answers.
func testDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("VOUCH_TEST_POSTGRES_DSN")
	if dsn == "" {
		dsn = defaultDSN
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		testtools.Missing(t, "no PostgreSQL reachable (set VOUCH_TEST_POSTGRES_DSN): "+err.Error())
		return ""
	}
	conn.Close(ctx)
	return dsn
}

// newSchema returns a fresh schema name, dropped with everything in it when
// the test ends.
func newSchema(t testing.TB, dsn string) string {
	t.Helper()
	var b [6]byte
	rand.Read(b[:])
	schema := "vouch_test_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{schema}.Sanitize()+` CASCADE`); err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
		}
	})
	return schema
}

// withSchema returns dsn as a store URL selecting schema.
func withSchema(t testing.TB, dsn, schema string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("parsing DSN: %v", err)
	}
	q := u.Query()
	q.Set("schema", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func newStore(t *testing.T) store.Store {
	t.Helper()
	dsn := testDSN(t)
	s, err := postgres.Open(context.Background(), postgres.Config{DSN: dsn, Schema: newSchema(t, dsn)})
	if err != nil {
		t.Fatalf("postgres.Open = %v", err)
	}
	t.Cleanup(func() { s.Close() }) // registered after the drop: runs first
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, newStore)
}

func TestParseURL(t *testing.T) {
	tests := []struct {
		name       string
		url        string
		wantDSN    string
		wantSchema string
		wantErr    error
	}{
		{name: "plain", url: "postgres://vouch@db:5432/vouch?sslmode=disable", wantDSN: "postgres://vouch@db:5432/vouch?sslmode=disable"},
		{name: "schema", url: "postgresql://vouch@db/vouch?schema=ledger&sslmode=require", wantDSN: "postgresql://vouch@db/vouch?sslmode=require", wantSchema: "ledger"},
		{name: "other scheme", url: "sqlite:///x.db", wantErr: store.ErrInvalidArgument},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := postgres.ParseURL(tc.url)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("ParseURL error = %v, want %v", err, tc.wantErr)
			}
			if got.DSN != tc.wantDSN || got.Schema != tc.wantSchema {
				t.Errorf("ParseURL = %q schema %q; want %q schema %q", got.DSN, got.Schema, tc.wantDSN, tc.wantSchema)
			}
		})
	}
}

// TestConcurrentMigrations opens one fresh schema from several goroutines
// at once, as replicas starting together do.
func TestConcurrentMigrations(t *testing.T) {
	dsn := testDSN(t)
	schema := newSchema(t, dsn)
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			s, err := store.Open(context.Background(), withSchema(t, dsn, schema))
			if err == nil {
				_, err = s.RevocationsVersion(context.Background())
				s.Close()
			}
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Errorf("concurrent Open = %v", err)
		}
	}
}

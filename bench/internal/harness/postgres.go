package harness

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultPostgresDSN is the database the bench programs use unless told
// otherwise (the same default as the project's tests).
const DefaultPostgresDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// PostgresSchema checks that the database at dsn is reachable and returns
// a store URL that puts vouch's tables into a fresh schema
// vouch_bench_<random> (vouchd creates it). The schema is dropped at
// cleanup, after the child processes are gone.
func PostgresSchema(ctx context.Context, dsn string) (string, error) {
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", fmt.Errorf("postgres DSN: want postgres://user@host:port/db")
	}
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("schema name: %w", err)
	}
	schema := "vouch_bench_" + hex.EncodeToString(b[:])
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, dsn)
	if err != nil {
		return "", fmt.Errorf("connecting to postgres: %w", err)
	}
	_ = conn.Close(cctx)
	Cleanup(func() {
		dctx, dcancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer dcancel()
		c, err := pgx.Connect(dctx, dsn)
		if err != nil {
			fmt.Fprintf(os.Stderr, "dropping schema %s: %v\n", schema, err)
			return
		}
		defer func() { _ = c.Close(dctx) }()
		if _, err := c.Exec(dctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			fmt.Fprintf(os.Stderr, "dropping schema %s: %v\n", schema, err)
		}
	})
	q := u.Query()
	q.Set("schema", schema)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

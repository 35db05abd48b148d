package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"math/bits"
	"strings"
	"sync"
)

// maxParams bounds the parameters of one statement: SQLite refuses more
// than SQLITE_MAX_VARIABLE_NUMBER (32766 since 3.32, 999 before), and a
// ledger entry may list 10,000 packages of 10 columns each.
const maxParams = 999

// rowInsert is a multi-row INSERT: prefix, then "(?,…)" per row. Its
// statements for 1, 2, 4, … rows, the only counts chunks returns, are
// written once by newRowInsert rather than on every append.
type rowInsert struct {
	cols  int
	texts []string // texts[k]: the statement for 1<<k rows, within maxParams
}

func newRowInsert(prefix string, cols int) rowInsert {
	r := rowInsert{cols: cols}
	row := "(" + strings.Repeat("?,", cols-1) + "?)"
	for n := 1; n*cols <= maxParams; n *= 2 {
		var b strings.Builder
		b.Grow(len(prefix) + n*(len(row)+1))
		b.WriteString(prefix)
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(row)
		}
		r.texts = append(r.texts, b.String())
	}
	return r
}

var (
	insertDigests  = newRowInsert(`INSERT INTO attestation_digests (attestation_seq, alg, value) VALUES `, 3)
	insertPackages = newRowInsert(`INSERT INTO attestation_packages
		(attestation_seq, idx, name, version, arch, repository, checksum, datahash, verdict, index_sha256) VALUES `, 10)
	insertPredicates = newRowInsert(`INSERT INTO attestation_predicates (attestation_seq, idx, type, digest, bundle, codec) VALUES `, 6)
)

// sql returns the statement for n rows, n a power of two from chunks.
func (r rowInsert) sql(n int) string { return r.texts[bits.TrailingZeros(uint(n))] }

// chunks returns the row counts of the statements that insert rows rows:
// powers of two, largest first, each within maxParams. Any count takes at
// most log2 statements, and at most a handful of distinct statements per
// table are ever prepared, so every one stays cached.
func (r rowInsert) chunks(rows int) []int {
	chunk := 1 << (len(r.texts) - 1)
	var out []int
	for rows > 0 {
		n := chunk
		for n > rows {
			n /= 2
		}
		out = append(out, n)
		rows -= n
	}
	return out
}

// insertRows inserts args (len a multiple of r.cols, row after row).
func (s *Store) insertRows(ctx context.Context, tx *sql.Tx, r rowInsert, args []any) error {
	if len(args)%r.cols != 0 {
		return fmt.Errorf("inserting rows: %d values for %d columns", len(args), r.cols)
	}
	for _, n := range r.chunks(len(args) / r.cols) {
		st, err := s.stmts.get(ctx, tx, r.sql(n))
		if err != nil {
			return err
		}
		_, err = st.ExecContext(ctx, args[:n*r.cols]...)
		st.Close()
		if err != nil {
			return err
		}
		args = args[n*r.cols:]
	}
	return nil
}

// stmtCache keeps the write connection's prepared statements by SQL text:
// parsing a 50-row INSERT of 500 parameters costs more than running it.
// Only the fixed statement set of this package goes through it, so it is
// bounded.
//
// Statements are prepared by warm, outside any transaction: the write pool
// has one connection, which an open transaction holds, so preparing on the
// pool from inside one would wait for itself.
type stmtCache struct {
	db *sql.DB
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

// warm prepares the queries not yet cached. A failure is not an error
// here: get then prepares within the transaction and reports it.
func (c *stmtCache) warm(ctx context.Context, queries ...string) {
	for _, q := range queries {
		c.mu.Lock()
		_, ok := c.m[q]
		c.mu.Unlock()
		if ok {
			continue
		}
		st, err := c.db.PrepareContext(ctx, q)
		if err != nil {
			return
		}
		c.mu.Lock()
		if c.m == nil {
			c.m = make(map[string]*sql.Stmt)
		}
		if _, ok := c.m[q]; ok {
			st.Close()
		} else {
			c.m[q] = st
		}
		c.mu.Unlock()
	}
}

// get returns the statement for query bound to tx; the caller closes it.
// One not warmed is prepared on tx, for this transaction only.
func (c *stmtCache) get(ctx context.Context, tx *sql.Tx, query string) (*sql.Stmt, error) {
	c.mu.Lock()
	st, ok := c.m[query]
	c.mu.Unlock()
	if ok {
		return tx.StmtContext(ctx, st), nil
	}
	st, err := tx.PrepareContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("preparing statement: %w", err)
	}
	return st, nil
}

func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, st := range c.m {
		st.Close()
	}
	c.m = nil
}

// Package sqlite is the embedded store backend: one SQLite file in WAL mode, through the pure-Go modernc.org/sqlite driver.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	sqlite "modernc.org/sqlite"
	sqlitelib "modernc.org/sqlite/lib"

	"github.com/vouchdev/vouch/store"
	"github.com/vouchdev/vouch/store/internal/common"
)

//go:embed migrations/*.sql
var migrations embed.FS

func init() {
	store.Register("sqlite", func(ctx context.Context, rawURL string) (store.Store, error) {
		cfg, err := ParseURL(rawURL)
		if err != nil {
			return nil, err
		}
		return Open(ctx, cfg)
	})
}

// Memory is the Config.Path of a private in-memory database.
const Memory = ":memory:"

// Config configures a SQLite store.
type Config struct {
	// Path is the database file, created if missing; Memory for a private
	// in-memory database that lives as long as the Store (tests).
	Path string
	// BusyTimeout is how long a write waits for another connection's write
	// transaction before failing. Default 5s.
	BusyTimeout time.Duration
	// MaxConns bounds the pool of reading connections. Default 8. Writes
	// use one more connection; Memory uses a single connection for all.
	MaxConns int
	// BeforeCommit, when set, is called inside write transactions with the
	// operation name: "save_snapshot.diff" after part of a snapshot's diff is
	// written (the first batch of added entries), and "<op>"
	// ("save_snapshot", "append_attestation", ...) just before COMMIT. It
	// exists for crash tests and MUST be nil in production.
	BeforeCommit func(op string)
	// WALLimit is the size of the write-ahead log above which the
	// background checkpointer empties it with a TRUNCATE checkpoint, which
	// briefly holds up writers. Default 64 MiB.
	WALLimit int64
	// IndexBatch is how many ledger package rows may wait for the ledger
	// index: the append that reaches it writes them as one sorted run
	// (migration 4). Queries read waiting rows directly, so it trades a
	// larger scan per query for fewer, larger runs. Default 8192.
	IndexBatch int
}

// DefaultIndexBatch is Config.IndexBatch's default.
const DefaultIndexBatch = 8192

// DefaultWALLimit is Config.WALLimit's default.
const DefaultWALLimit = 64 << 20

// ParseURL reads a store URL: sqlite:///absolute/path.db, or
// sqlite://:memory: for an in-memory database.
func ParseURL(rawURL string) (Config, error) {
	rest, ok := strings.CutPrefix(rawURL, "sqlite://")
	if !ok {
		return Config{}, fmt.Errorf("sqlite store URL: %w: want sqlite:///path or sqlite://:memory:", store.ErrInvalidArgument)
	}
	if rest == Memory {
		return Config{Path: Memory}, nil
	}
	u, err := url.Parse(rawURL)
	if err != nil || u.Host != "" || !filepath.IsAbs(u.Path) || u.RawQuery != "" {
		return Config{}, fmt.Errorf("sqlite store URL %q: %w: want sqlite:///absolute/path", rawURL, store.ErrInvalidArgument)
	}
	return Config{Path: u.Path}, nil
}

// Store is a store.Store on SQLite.
type Store struct {
	db     *sql.DB // writes: one connection, IMMEDIATE transactions
	rdb    *sql.DB // reads (the same as db for Memory)
	cfg    Config
	closed atomic.Bool

	// The checkpointer goroutine copies committed WAL pages into the
	// database file after writes (at most once a second), so that commits
	// do not pay for it.
	ckpt    chan struct{}
	stop    chan struct{}
	stopped chan struct{}
	locks   common.LockSet
	notify  common.Broadcaster

	lookup *sql.Stmt
	stmts  stmtCache // of db, the write connection
	// pending counts the ledger package rows this Store appended since it
	// last wrote a ledger run (or, at Open, all rows without one).
	pending atomic.Int64
	codec   bundleCodec

	// appends feeds the ledger writer goroutine (ledgerwriter.go), which
	// closes ledgerDone when it stops.
	appends    chan *appendReq
	ledgerDone chan struct{}
}

var _ store.Store = (*Store)(nil)

// Open opens (creating if needed) the database cfg names and applies any
// pending schema migrations. Opening the same file from several goroutines
// or processes at once is safe: migrations run in an exclusive transaction.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Path == "" {
		return nil, fmt.Errorf("opening sqlite store: %w: empty path", store.ErrInvalidArgument)
	}
	if strings.ContainsAny(cfg.Path, "?#") {
		return nil, fmt.Errorf("opening sqlite store: %w: path %q contains ? or #", store.ErrInvalidArgument, cfg.Path)
	}
	if cfg.BusyTimeout <= 0 {
		cfg.BusyTimeout = 5 * time.Second
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 8
	}
	if cfg.WALLimit <= 0 {
		cfg.WALLimit = DefaultWALLimit
	}
	if cfg.IndexBatch <= 0 {
		cfg.IndexBatch = DefaultIndexBatch
	}
	params := func() url.Values {
		q := url.Values{}
		q.Add("_pragma", "busy_timeout("+strconv.FormatInt(cfg.BusyTimeout.Milliseconds(), 10)+")")
		q.Add("_pragma", "foreign_keys(1)")
		if cfg.Path != Memory {
			// WAL: readers never block the writer. synchronous=FULL: a
			// committed transaction survives power loss, not only a crash.
			q.Add("_pragma", "journal_mode(WAL)")
			q.Add("_pragma", "synchronous(FULL)")
			q.Add("_pragma", "journal_size_limit("+strconv.FormatInt(cfg.WALLimit, 10)+")")
		}
		return q
	}
	// Writes go through one connection whose transactions begin IMMEDIATE
	// (take the write lock up front, so they never fail half-way on lock
	// upgrade); goroutines queue in the pool, other processes wait up to
	// BusyTimeout. Reads use a separate pool with deferred transactions.
	wq := params()
	wq.Add("_txlock", "immediate")
	// Statement journals (needed by multi-row INSERTs that may violate a
	// unique index) in memory, and a page cache big enough for a large
	// index's B-tree pages: a first snapshot otherwise spends most of its
	// time in file I/O.
	wq.Add("_pragma", "temp_store(MEMORY)")
	wq.Add("_pragma", "cache_size(-65536)")
	// Checkpoints run in the background (see checkpointer), not inside the
	// commit that happens to cross the WAL size limit.
	wq.Add("_pragma", "wal_autocheckpoint(0)")
	db, err := sql.Open("sqlite", "file:"+cfg.Path+"?"+wq.Encode())
	if err != nil {
		return nil, fmt.Errorf("opening sqlite store: %w", err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	rdb := db
	if cfg.Path != Memory {
		if rdb, err = sql.Open("sqlite", "file:"+cfg.Path+"?"+params().Encode()); err != nil {
			db.Close()
			return nil, fmt.Errorf("opening sqlite store: %w", err)
		}
		rdb.SetMaxOpenConns(cfg.MaxConns)
		rdb.SetMaxIdleConns(cfg.MaxConns)
	}
	s := &Store{db: db, rdb: rdb, cfg: cfg, ckpt: make(chan struct{}, 1), stop: make(chan struct{}), stopped: make(chan struct{}),
		appends: make(chan *appendReq), ledgerDone: make(chan struct{})}
	s.stmts.db = db
	if s.codec, err = newBundleCodec(); err != nil {
		_ = s.closeDBs()
		return nil, fmt.Errorf("opening sqlite store: %w", err)
	}
	if err := s.migrate(ctx); err != nil {
		_ = s.closeDBs() // the error being returned is the one that matters
		return nil, err
	}
	var pending int64
	if err := rdb.QueryRowContext(ctx, `SELECT COUNT(*) FROM attestation_packages WHERE attestation_seq > `+pendingSeq).Scan(&pending); err != nil {
		_ = s.closeDBs() // the error being returned is the one that matters
		return nil, fmt.Errorf("opening sqlite store: counting unindexed ledger rows: %w", err)
	}
	s.pending.Store(pending)
	// The arch's streams through a sub-select, unlike the PostgreSQL
	// backend's join on st.arch: given the join, SQLite scans every entry
	// (18 ms against 18 µs at 186,000 entries, measured).
	s.lookup, err = rdb.PrepareContext(ctx, entrySelect+`
		WHERE e.stream_id IN (SELECT id FROM streams WHERE arch = ?) AND e.name = ? AND e.version = ?
		ORDER BY e.id`)
	if err != nil {
		_ = s.closeDBs() // the error being returned is the one that matters
		return nil, fmt.Errorf("opening sqlite store: preparing lookup: %w", err)
	}
	if cfg.Path == Memory {
		close(s.stopped)
	} else {
		go s.checkpointer()
	}
	go s.ledgerWriter()
	return s, nil
}

// checkpointer runs PASSIVE checkpoints (which never block readers or
// writers) when writes signal, at most once a second, until Close.
//
// A passive checkpoint copies pages into the database file but cannot reset
// the WAL while readers still use it; under steady reads and writes the WAL
// then only grows (checkpoint starvation, https://sqlite.org/wal.html §"Avoiding
// Excessively Large WAL Files"). So when the WAL is over cfg.WALLimit the
// checkpointer takes the write connection and runs a TRUNCATE checkpoint: it
// waits (busy timeout) for readers to move off the WAL, copies the rest and
// truncates the file; writers queue behind it meanwhile.
//
// A failed checkpoint is harmless: the WAL keeps the pages and the next one
// retries.
func (s *Store) checkpointer() {
	defer close(s.stopped)
	wal := s.cfg.Path + "-wal"
	for {
		select {
		case <-s.stop:
			return
		case <-s.ckpt:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		_, _ = s.rdb.ExecContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`) // see above: failures are retried
		if fi, err := os.Stat(wal); err == nil && fi.Size() > s.cfg.WALLimit {
			_, _ = s.db.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`)
		}
		cancel()
		select {
		case <-s.stop:
			return
		case <-time.After(time.Second):
		}
	}
}

// Close closes the database.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	close(s.stop)
	<-s.stopped
	<-s.ledgerDone
	s.lookup.Close()
	s.stmts.close()
	s.codec.close()
	return s.closeDBs()
}

func (s *Store) closeDBs() error {
	err := s.db.Close()
	if s.rdb != s.db {
		err = errors.Join(err, s.rdb.Close())
	}
	return err
}

func (s *Store) alive() error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	return nil
}

// migrate applies the embedded migrations that the database lacks, all in
// one IMMEDIATE transaction (so concurrent openers serialise).
func (s *Store) migrate(ctx context.Context) error {
	files, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return fmt.Errorf("migrating sqlite store: %w", err)
	}
	sort.Strings(files)
	return s.write(ctx, "migrate", func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
			return fmt.Errorf("migrating sqlite store: %w", err)
		}
		var have int
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&have); err != nil {
			return fmt.Errorf("migrating sqlite store: %w", err)
		}
		if have > len(files) {
			return fmt.Errorf("migrating sqlite store: %w: database at version %d, binary knows %d", store.ErrSchemaTooNew, have, len(files))
		}
		for i := have; i < len(files); i++ {
			body, err := migrations.ReadFile(files[i])
			if err != nil {
				return fmt.Errorf("migrating sqlite store: %w", err)
			}
			if _, err := tx.ExecContext(ctx, string(body)); err != nil {
				return fmt.Errorf("migrating sqlite store to version %d: %w", i+1, err)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, i+1, time.Now().UnixMicro()); err != nil {
				return fmt.Errorf("migrating sqlite store: %w", err)
			}
		}
		return nil
	})
}

// write runs fn in one IMMEDIATE transaction and commits it.
func (s *Store) write(ctx context.Context, op string, fn func(tx *sql.Tx) error) error {
	if err := s.alive(); err != nil {
		return err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s: begin: %w", op, err)
	}
	// Rolled back on every way out but a commit, a panic in fn included: an
	// open transaction would hold the one write connection, and every later
	// write would wait for it. (After a failed Commit, Rollback is a no-op.)
	committed := false
	defer func() {
		if !committed {
			_ = tx.Rollback()
		}
	}()
	if err := fn(tx); err != nil {
		return err
	}
	s.hook(op)
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%s: commit: %w", op, err)
	}
	committed = true
	select {
	case s.ckpt <- struct{}{}:
	default:
	}
	return nil
}

func (s *Store) hook(op string) {
	if s.cfg.BeforeCommit != nil {
		s.cfg.BeforeCommit(op)
	}
}

func isUnique(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlitelib.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlitelib.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

func nullInt(v int64) sql.NullInt64 { return sql.NullInt64{Int64: v, Valid: v != 0} }

// Package postgres is the store backend for several vouchd replicas sharing one PostgreSQL database, through a pgx/v5 pool.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vouchdev/vouch/store"
	"github.com/vouchdev/vouch/store/internal/common"
)

//go:embed migrations/*.sql
var migrations embed.FS

func init() {
	open := func(ctx context.Context, rawURL string) (store.Store, error) {
		cfg, err := ParseURL(rawURL)
		if err != nil {
			return nil, err
		}
		return Open(ctx, cfg)
	}
	store.Register("postgres", open)
	store.Register("postgresql", open)
}

// Config configures a PostgreSQL store.
type Config struct {
	// DSN is a libpq-style URL or key=value string, e.g.
	// postgres://vouch@db:5432/vouch?sslmode=verify-full.
	DSN string
	// Schema, when set, is where vouch's tables live: it is created if
	// missing and put first on every connection's search_path. Empty means
	// the DSN's own search_path (by default "public").
	Schema string
	// MaxConns bounds the connection pool. Default 10. Each held refresh
	// lock and each WatchSnapshots watcher uses one extra connection of its
	// own.
	MaxConns int32
	// BeforeCommit, when set, is called inside write transactions with the
	// operation name: "save_snapshot.diff" after part of a snapshot's diff is
	// written, and "<op>" ("save_snapshot", "append_attestation", ...) just
	// before COMMIT. It exists for crash tests and MUST be nil in production.
	BeforeCommit func(op string)
}

// ParseURL reads a store URL: a postgres:// or postgresql:// URL as libpq
// understands it, plus an optional schema=name query parameter that becomes
// Config.Schema (and is removed from the DSN).
func ParseURL(rawURL string) (Config, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return Config{}, fmt.Errorf("postgres store URL: %w: want postgres://user@host:port/db", store.ErrInvalidArgument)
	}
	q := u.Query()
	schema := q.Get("schema")
	q.Del("schema")
	u.RawQuery = q.Encode()
	return Config{DSN: u.String(), Schema: schema}, nil
}

// Store is a store.Store on PostgreSQL.
type Store struct {
	pool    *pgxpool.Pool
	cfg     Config
	channel string // NOTIFY channel of this schema
	closed  atomic.Bool

	// done is closed by Close; it ends watchers.
	done     chan struct{}
	closeMu  sync.Mutex
	watchers sync.WaitGroup
}

var _ store.Store = (*Store)(nil)

// Open connects to the database and applies any pending schema migrations.
// Several replicas may open the same database at once: migrations run in
// one transaction under a transaction-scoped advisory lock, so exactly one
// applies them and the others then find them applied.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	pcfg, err := pgxpool.ParseConfig(cfg.DSN)
	if err != nil {
		// pgx errors may quote the DSN, password included: do not wrap.
		return nil, fmt.Errorf("opening postgres store: %w: cannot parse DSN", store.ErrInvalidArgument)
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 10
	}
	pcfg.MaxConns = cfg.MaxConns
	if cfg.Schema != "" {
		pcfg.ConnConfig.RuntimeParams["search_path"] = pgx.Identifier{cfg.Schema}.Sanitize()
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("opening postgres store: %w", err)
	}
	s := &Store{
		pool:    pool,
		cfg:     cfg,
		channel: fmt.Sprintf("vouch_snapshots_%016x", uint64(common.LockKey("notify", cfg.Schema))),
		done:    make(chan struct{}),
	}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// Close ends watchers and closes the pool. Held refresh locks stay valid
// until their unlock is called.
func (s *Store) Close() error {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed.Swap(true) {
		return nil
	}
	close(s.done)
	s.watchers.Wait()
	s.pool.Close()
	return nil
}

func (s *Store) alive() error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	return nil
}

func (s *Store) migrate(ctx context.Context) error {
	files, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return fmt.Errorf("migrating postgres store: %w", err)
	}
	sort.Strings(files)
	return s.write(ctx, "migrate", func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, common.LockKey("migrate", s.cfg.Schema)); err != nil {
			return fmt.Errorf("migrating postgres store: lock: %w", err)
		}
		if s.cfg.Schema != "" {
			if _, err := tx.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+pgx.Identifier{s.cfg.Schema}.Sanitize()); err != nil {
				return fmt.Errorf("migrating postgres store: creating schema: %w", err)
			}
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`); err != nil {
			return fmt.Errorf("migrating postgres store: %w", err)
		}
		var have int
		if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&have); err != nil {
			return fmt.Errorf("migrating postgres store: %w", err)
		}
		if have > len(files) {
			return fmt.Errorf("migrating postgres store: %w: database at version %d, binary knows %d", store.ErrSchemaTooNew, have, len(files))
		}
		for i := have; i < len(files); i++ {
			body, err := migrations.ReadFile(files[i])
			if err != nil {
				return fmt.Errorf("migrating postgres store: %w", err)
			}
			// Simple protocol: a migration is several statements.
			if _, err := tx.Conn().PgConn().Exec(ctx, string(body)).ReadAll(); err != nil {
				return fmt.Errorf("migrating postgres store to version %d: %w", i+1, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, i+1); err != nil {
				return fmt.Errorf("migrating postgres store: %w", err)
			}
		}
		return nil
	})
}

// write runs fn in one READ COMMITTED transaction and commits it.
func (s *Store) write(ctx context.Context, op string, fn func(tx pgx.Tx) error) error {
	if err := s.alive(); err != nil {
		return err
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("%s: begin: %w", op, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if err := fn(tx); err != nil {
		return err
	}
	s.hook(op)
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("%s: commit: %w", op, err)
	}
	return nil
}

func (s *Store) hook(op string) {
	if s.cfg.BeforeCommit != nil {
		s.cfg.BeforeCommit(op)
	}
}

func isUnique(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

func nullInt(v int64) *int64 {
	if v == 0 {
		return nil
	}
	return &v
}

func utc(t time.Time) time.Time { return t.UTC() }

// TryLockRefresh implements store.Coordinator with a session-level advisory
// lock held on a dedicated connection: the lock ends with unlock, or when
// the connection (or the process holding it) dies.
func (s *Store) TryLockRefresh(ctx context.Context, repo, arch string) (func(), bool, error) {
	if err := s.alive(); err != nil {
		return nil, false, err
	}
	pc, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("refresh lock: %w", err)
	}
	conn := pc.Hijack() // ours now: Close must not wait for it
	key := common.LockKey("refresh", s.cfg.Schema, repo, arch)
	var ok bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&ok); err != nil {
		conn.Close(context.WithoutCancel(ctx))
		return nil, false, fmt.Errorf("refresh lock: %w", err)
	}
	if !ok {
		conn.Close(context.WithoutCancel(ctx))
		return nil, false, nil
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			// Closing the session releases the lock too; unlocking first
			// makes it available without waiting for the backend to exit.
			_, _ = conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, key) // closing below releases it anyway
			conn.Close(ctx)
		})
	}, true, nil
}

// WatchSnapshots implements store.Coordinator with LISTEN/NOTIFY: SaveSnapshot
// notifies in its transaction, so the notice is delivered on commit. The
// watcher holds one connection of its own and re-establishes it (after a
// pause) when it breaks; notices sent meanwhile are lost.
func (s *Store) WatchSnapshots(ctx context.Context) (<-chan store.SnapshotNotice, error) {
	if err := s.alive(); err != nil {
		return nil, err
	}
	conn, err := s.listen(ctx)
	if err != nil {
		return nil, err
	}
	ch := make(chan store.SnapshotNotice, 16)
	ctx, cancel := context.WithCancel(ctx)
	s.watchers.Add(1)
	go func() {
		select {
		case <-s.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	go func() {
		defer s.watchers.Done()
		defer close(ch)
		defer cancel()
		for {
			if conn == nil {
				select {
				case <-ctx.Done():
					return
				case <-time.After(time.Second):
				}
				if conn, err = s.listen(ctx); err != nil {
					conn = nil
					continue
				}
			}
			n, err := conn.WaitForNotification(ctx)
			if err != nil {
				conn.Close(context.Background())
				conn = nil
				if ctx.Err() != nil {
					return
				}
				continue
			}
			var notice store.SnapshotNotice
			if err := decodeNotice(n.Payload, &notice); err != nil {
				continue
			}
			select {
			case ch <- notice:
			default: // hints: drop for a slow watcher
			}
		}
	}()
	return ch, nil
}

func (s *Store) listen(ctx context.Context) (*pgx.Conn, error) {
	pc, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("watching snapshots: %w", err)
	}
	conn := pc.Hijack()
	if _, err := conn.Exec(ctx, `LISTEN `+pgx.Identifier{s.channel}.Sanitize()); err != nil {
		conn.Close(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("watching snapshots: %w", err)
	}
	return conn, nil
}

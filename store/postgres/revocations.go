package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vouchdev/vouch/apk"
	"github.com/vouchdev/vouch/store"
	"github.com/vouchdev/vouch/store/internal/common"
)

// Revoke implements store.RevocationStore.
func (s *Store) Revoke(ctx context.Context, r store.Revocation) error {
	if r.Checksum.IsZero() {
		return fmt.Errorf("revoking: %w: zero checksum", store.ErrInvalidArgument)
	}
	return s.write(ctx, "revoke", func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO revocations (checksum, reason, revoked_by, revoked_at) VALUES ($1, $2, $3, $4)`,
			common.Checksum(r.Checksum), r.Reason, r.By, common.Trunc(r.At))
		if isUnique(err) {
			return fmt.Errorf("revoking %s: %w: already revoked", r.Checksum, store.ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("revoking %s: %w", r.Checksum, err)
		}
		return bumpRevocations(ctx, tx)
	})
}

func bumpRevocations(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, `UPDATE counters SET value = value + 1 WHERE name = 'revocations'`); err != nil {
		return fmt.Errorf("revocations version: %w", err)
	}
	return nil
}

// Unrevoke implements store.RevocationStore.
func (s *Store) Unrevoke(ctx context.Context, c apk.Checksum, by string, at time.Time) error {
	if c.IsZero() {
		return fmt.Errorf("unrevoking: %w: zero checksum", store.ErrInvalidArgument)
	}
	return s.write(ctx, "unrevoke", func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE revocations SET unrevoked_by = $1, unrevoked_at = $2
			WHERE checksum = $3 AND unrevoked_at IS NULL`, by, common.Trunc(at), common.Checksum(c))
		if err != nil {
			return fmt.Errorf("unrevoking %s: %w", c, err)
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("unrevoking %s: %w: not revoked", c, store.ErrNotFound)
		}
		return bumpRevocations(ctx, tx)
	})
}

const revocationCols = `checksum, reason, revoked_by, revoked_at FROM revocations WHERE unrevoked_at IS NULL`

func scanRevocation(row pgx.Row) (store.Revocation, error) {
	var (
		r   store.Revocation
		sum string
	)
	if err := row.Scan(&sum, &r.Reason, &r.By, &r.At); err != nil {
		return store.Revocation{}, err
	}
	c, err := common.ParseChecksum(sum)
	if err != nil {
		return store.Revocation{}, err
	}
	r.Checksum, r.At = c, utc(r.At)
	return r, nil
}

// Revocation implements store.RevocationStore.
func (s *Store) Revocation(ctx context.Context, c apk.Checksum) (store.Revocation, error) {
	if err := s.alive(); err != nil {
		return store.Revocation{}, err
	}
	r, err := scanRevocation(s.pool.QueryRow(ctx, `SELECT `+revocationCols+` AND checksum = $1`, common.Checksum(c)))
	if notFound(err) {
		return store.Revocation{}, fmt.Errorf("revocation of %s: %w", c, store.ErrNotFound)
	}
	if err != nil {
		return store.Revocation{}, fmt.Errorf("revocation of %s: %w", c, err)
	}
	return r, nil
}

// Revocations implements store.RevocationStore, reading the version and the
// list in one REPEATABLE READ transaction.
func (s *Store) Revocations(ctx context.Context) (store.RevocationSet, error) {
	if err := s.alive(); err != nil {
		return store.RevocationSet{}, err
	}
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return store.RevocationSet{}, fmt.Errorf("listing revocations: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	var set store.RevocationSet
	if err := tx.QueryRow(ctx, `SELECT value FROM counters WHERE name = 'revocations'`).Scan(&set.Version); err != nil {
		return store.RevocationSet{}, fmt.Errorf("listing revocations: %w", err)
	}
	rows, err := tx.Query(ctx, `SELECT `+revocationCols+` ORDER BY revoked_at, id`)
	if err != nil {
		return store.RevocationSet{}, fmt.Errorf("listing revocations: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		r, err := scanRevocation(rows)
		if err != nil {
			return store.RevocationSet{}, fmt.Errorf("listing revocations: %w", err)
		}
		set.Revocations = append(set.Revocations, r)
	}
	if err := rows.Err(); err != nil {
		return store.RevocationSet{}, fmt.Errorf("listing revocations: %w", err)
	}
	return set, nil
}

// RevocationsVersion implements store.RevocationStore.
func (s *Store) RevocationsVersion(ctx context.Context) (int64, error) {
	if err := s.alive(); err != nil {
		return 0, err
	}
	var v int64
	if err := s.pool.QueryRow(ctx, `SELECT value FROM counters WHERE name = 'revocations'`).Scan(&v); err != nil {
		return 0, fmt.Errorf("revocations version: %w", err)
	}
	return v, nil
}

// AppendEvent implements store.EventStore.
func (s *Store) AppendEvent(ctx context.Context, e store.Event) (int64, error) {
	if err := common.ValidateEvent(e); err != nil {
		return 0, fmt.Errorf("appending event: %w", err)
	}
	var id int64
	err := s.write(ctx, "append_event", func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `INSERT INTO events
			(kind, repository, arch, at, sha256, name, version, checksum, other_checksum, detail, evidence)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id`,
			string(e.Kind), e.Repository, e.Arch, common.Trunc(e.Time), strings.ToLower(e.SHA256), e.Name, e.Version,
			common.Checksum(e.Checksum), common.Checksum(e.OtherChecksum), e.Detail, e.Evidence).Scan(&id); err != nil {
			return fmt.Errorf("appending event: %w", err)
		}
		return nil
	})
	return id, err
}

// ListEvents implements store.EventStore.
func (s *Store) ListEvents(ctx context.Context, q store.EventQuery) ([]store.Event, string, error) {
	if err := s.alive(); err != nil {
		return nil, "", err
	}
	after, err := common.DecodeEventToken(q.PageToken)
	if err != nil {
		return nil, "", fmt.Errorf("listing events: %w", err)
	}
	if q.Arch != "" && q.Repository == "" {
		return nil, "", fmt.Errorf("listing events: %w: arch without repository", store.ErrInvalidArgument)
	}
	var (
		where []string
		args  []any
	)
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if q.Repository != "" {
		where = append(where, `repository = `+arg(q.Repository))
	}
	if q.Arch != "" {
		where = append(where, `arch = `+arg(q.Arch))
	}
	if q.Kind != "" {
		where = append(where, `kind = `+arg(string(q.Kind)))
	}
	if !q.Since.IsZero() {
		where = append(where, `at >= `+arg(common.Trunc(q.Since)))
	}
	if after != 0 {
		where = append(where, `id < `+arg(after))
	}
	size := common.PageSize(q.PageSize)
	query := `SELECT id, kind, repository, arch, at, sha256, name, version, checksum, other_checksum, detail, evidence FROM events`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, ` AND `)
	}
	query += fmt.Sprintf(` ORDER BY id DESC LIMIT %d`, size+1)
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, "", fmt.Errorf("listing events: %w", err)
	}
	defer rows.Close()
	var out []store.Event
	for rows.Next() {
		var (
			e          store.Event
			kind       string
			sum, other string
		)
		if err := rows.Scan(&e.ID, &kind, &e.Repository, &e.Arch, &e.Time, &e.SHA256, &e.Name, &e.Version, &sum, &other, &e.Detail, &e.Evidence); err != nil {
			return nil, "", fmt.Errorf("listing events: %w", err)
		}
		e.Kind, e.Time = store.EventKind(kind), utc(e.Time)
		if e.Checksum, err = common.ParseChecksum(sum); err != nil {
			return nil, "", fmt.Errorf("listing events: %w", err)
		}
		if e.OtherChecksum, err = common.ParseChecksum(other); err != nil {
			return nil, "", fmt.Errorf("listing events: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("listing events: %w", err)
	}
	next := ""
	if len(out) > size {
		out = out[:size]
		next = common.EncodeEventToken(out[size-1].ID)
	}
	return out, next, nil
}

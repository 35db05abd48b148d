package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/vouchdev/vouch/apk"
	"github.com/vouchdev/vouch/store"
	"github.com/vouchdev/vouch/store/internal/common"
)

// Revoke implements store.RevocationStore.
func (s *Store) Revoke(ctx context.Context, r store.Revocation) error {
	if r.Checksum.IsZero() {
		return fmt.Errorf("revoking: %w: zero checksum", store.ErrInvalidArgument)
	}
	return s.write(ctx, "revoke", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO revocations (checksum, reason, revoked_by, revoked_at) VALUES (?, ?, ?, ?)`,
			common.Checksum(r.Checksum), r.Reason, r.By, common.Micro(r.At))
		if isUnique(err) {
			return fmt.Errorf("revoking %s: %w: already revoked", r.Checksum, store.ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("revoking %s: %w", r.Checksum, err)
		}
		return bumpRevocations(ctx, tx)
	})
}

func bumpRevocations(ctx context.Context, tx *sql.Tx) error {
	if _, err := tx.ExecContext(ctx, `UPDATE counters SET value = value + 1 WHERE name = 'revocations'`); err != nil {
		return fmt.Errorf("revocations version: %w", err)
	}
	return nil
}

// Unrevoke implements store.RevocationStore.
func (s *Store) Unrevoke(ctx context.Context, c apk.Checksum, by string, at time.Time) error {
	if c.IsZero() {
		return fmt.Errorf("unrevoking: %w: zero checksum", store.ErrInvalidArgument)
	}
	return s.write(ctx, "unrevoke", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE revocations SET unrevoked_by = ?, unrevoked_at = ?
			WHERE checksum = ? AND unrevoked_at IS NULL`, by, common.Micro(at), common.Checksum(c))
		if err != nil {
			return fmt.Errorf("unrevoking %s: %w", c, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("unrevoking %s: %w", c, err)
		} else if n == 0 {
			return fmt.Errorf("unrevoking %s: %w: not revoked", c, store.ErrNotFound)
		}
		return bumpRevocations(ctx, tx)
	})
}

const revocationCols = `checksum, reason, revoked_by, revoked_at FROM revocations WHERE unrevoked_at IS NULL`

func scanRevocation(row interface{ Scan(...any) error }) (store.Revocation, error) {
	var (
		r   store.Revocation
		sum string
		at  int64
	)
	if err := row.Scan(&sum, &r.Reason, &r.By, &at); err != nil {
		return store.Revocation{}, err
	}
	c, err := common.ParseChecksum(sum)
	if err != nil {
		return store.Revocation{}, err
	}
	r.Checksum, r.At = c, common.FromMicro(at)
	return r, nil
}

// Revocation implements store.RevocationStore.
func (s *Store) Revocation(ctx context.Context, c apk.Checksum) (store.Revocation, error) {
	if err := s.alive(); err != nil {
		return store.Revocation{}, err
	}
	r, err := scanRevocation(s.rdb.QueryRowContext(ctx, `SELECT `+revocationCols+` AND checksum = ?`, common.Checksum(c)))
	if notFound(err) {
		return store.Revocation{}, fmt.Errorf("revocation of %s: %w", c, store.ErrNotFound)
	}
	if err != nil {
		return store.Revocation{}, fmt.Errorf("revocation of %s: %w", c, err)
	}
	return r, nil
}

// Revocations implements store.RevocationStore.
func (s *Store) Revocations(ctx context.Context) (store.RevocationSet, error) {
	if err := s.alive(); err != nil {
		return store.RevocationSet{}, err
	}
	tx, err := s.rdb.BeginTx(ctx, nil)
	if err != nil {
		return store.RevocationSet{}, fmt.Errorf("listing revocations: %w", err)
	}
	defer tx.Rollback()
	var set store.RevocationSet
	if err := tx.QueryRowContext(ctx, `SELECT value FROM counters WHERE name = 'revocations'`).Scan(&set.Version); err != nil {
		return store.RevocationSet{}, fmt.Errorf("listing revocations: %w", err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT `+revocationCols+` ORDER BY revoked_at, id`)
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
	if err := s.rdb.QueryRowContext(ctx, `SELECT value FROM counters WHERE name = 'revocations'`).Scan(&v); err != nil {
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
	err := s.write(ctx, "append_event", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO events
			(kind, repository, arch, at, sha256, name, version, checksum, other_checksum, detail, evidence)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			string(e.Kind), e.Repository, e.Arch, common.Micro(e.Time), strings.ToLower(e.SHA256), e.Name, e.Version,
			common.Checksum(e.Checksum), common.Checksum(e.OtherChecksum), e.Detail, e.Evidence)
		if err != nil {
			return fmt.Errorf("appending event: %w", err)
		}
		id, err = res.LastInsertId()
		return err
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
	if q.Repository != "" {
		where = append(where, `repository = ?`)
		args = append(args, q.Repository)
	}
	if q.Arch != "" {
		where = append(where, `arch = ?`)
		args = append(args, q.Arch)
	}
	if q.Kind != "" {
		where = append(where, `kind = ?`)
		args = append(args, string(q.Kind))
	}
	if !q.Since.IsZero() {
		where = append(where, `at >= ?`)
		args = append(args, common.Micro(q.Since))
	}
	if after != 0 {
		where = append(where, `id < ?`)
		args = append(args, after)
	}
	size := common.PageSize(q.PageSize)
	query := `SELECT id, kind, repository, arch, at, sha256, name, version, checksum, other_checksum, detail, evidence FROM events`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, ` AND `)
	}
	query += fmt.Sprintf(` ORDER BY id DESC LIMIT %d`, size+1)
	rows, err := s.rdb.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, "", fmt.Errorf("listing events: %w", err)
	}
	defer rows.Close()
	var out []store.Event
	for rows.Next() {
		var (
			e          store.Event
			kind       string
			at         int64
			sum, other string
		)
		if err := rows.Scan(&e.ID, &kind, &e.Repository, &e.Arch, &at, &e.SHA256, &e.Name, &e.Version, &sum, &other, &e.Detail, &e.Evidence); err != nil {
			return nil, "", fmt.Errorf("listing events: %w", err)
		}
		e.Kind, e.Time = store.EventKind(kind), common.FromMicro(at)
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

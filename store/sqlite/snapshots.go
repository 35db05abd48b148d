package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/vouchdev/vouch/apk"
	"github.com/vouchdev/vouch/store"
	"github.com/vouchdev/vouch/store/internal/common"
)

// insertBatch is the number of entries per multi-row INSERT (8 parameters
// each, well below SQLite's 32766 parameter limit).
const insertBatch = 500

// SaveSnapshot implements store.SnapshotStore.
func (s *Store) SaveSnapshot(ctx context.Context, snap store.Snapshot, diff store.Diff) (int64, error) {
	if err := common.ValidateSnapshot(snap, diff); err != nil {
		return 0, fmt.Errorf("saving snapshot: %w", err)
	}
	var id int64
	err := s.write(ctx, "save_snapshot", func(tx *sql.Tx) error {
		streamID, err := streamFor(ctx, tx, snap.Repository, snap.Arch)
		if err != nil {
			return err
		}
		// Claim the stream: only succeeds if Parent is still the latest.
		var latest sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT latest_snapshot FROM streams WHERE id = ?`, streamID).Scan(&latest); err != nil {
			return fmt.Errorf("saving snapshot: %w", err)
		}
		if latest.Int64 != snap.Parent {
			return fmt.Errorf("saving snapshot of %s/%s: %w: parent %d is not the latest snapshot %d", snap.Repository, snap.Arch, store.ErrConflict, snap.Parent, latest.Int64)
		}
		var parentCount int
		var parentConfirmed int64
		if snap.Parent != 0 {
			if err := tx.QueryRowContext(ctx, `SELECT entry_count, confirmed_at FROM snapshots WHERE id = ?`, snap.Parent).Scan(&parentCount, &parentConfirmed); err != nil {
				return fmt.Errorf("saving snapshot: reading parent: %w", err)
			}
		}
		if err := common.CheckCount(snap, parentCount, diff); err != nil {
			return fmt.Errorf("saving snapshot: %w", err)
		}
		fetched := common.Micro(snap.FetchedAt)
		res, err := tx.ExecContext(ctx, `INSERT INTO snapshots
			(stream_id, parent_id, sha256, fetched_at, confirmed_at, etag, last_modified, key_names, entry_count, description)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			streamID, nullInt(snap.Parent), strings.ToLower(snap.SHA256), fetched, fetched, snap.ETag, snap.LastModified,
			common.JSON(nonNil(snap.KeyNames)), snap.EntryCount, snap.Description)
		if err != nil {
			return fmt.Errorf("saving snapshot: %w", err)
		}
		if id, err = res.LastInsertId(); err != nil {
			return fmt.Errorf("saving snapshot: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE streams SET latest_snapshot = ? WHERE id = ?`, id, streamID); err != nil {
			return fmt.Errorf("saving snapshot: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO snapshot_raw (stream_id, snapshot_id, raw) VALUES (?, ?, ?)
			ON CONFLICT (stream_id) DO UPDATE SET snapshot_id = excluded.snapshot_id, raw = excluded.raw`, streamID, id, snap.Raw); err != nil {
			return fmt.Errorf("saving snapshot raw bytes: %w", err)
		}
		if err := removeEntries(ctx, tx, streamID, id, fetched, parentConfirmed, diff.Removed); err != nil {
			return err
		}
		if err := checkAdded(ctx, tx, streamID, snap.Parent != 0, diff.Added); err != nil {
			return err
		}
		return addEntries(ctx, tx, streamID, id, fetched, diff.Added, func() { s.hook("save_snapshot.diff") })
	})
	if err != nil {
		return 0, err
	}
	s.notify.Publish(store.SnapshotNotice{Repository: snap.Repository, Arch: snap.Arch, ID: id})
	return id, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// streamFor returns the id of the (repo, arch) stream, creating it.
func streamFor(ctx context.Context, tx *sql.Tx, repo, arch string) (int64, error) {
	var id int64
	err := tx.QueryRowContext(ctx, `INSERT INTO streams (repository, arch) VALUES (?, ?)
		ON CONFLICT (repository, arch) DO UPDATE SET repository = excluded.repository
		RETURNING id`, repo, arch).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("saving snapshot: stream: %w", err)
	}
	return id, nil
}

func removeEntries(ctx context.Context, tx *sql.Tx, streamID, snapID, at, lastSeen int64, removed []store.Entry) error {
	if len(removed) == 0 {
		return nil
	}
	stmt, err := tx.PrepareContext(ctx, `UPDATE entries SET left_snapshot = ?, left_at = ?, last_seen = ?
		WHERE stream_id = ? AND name = ? AND version = ? AND checksum = ? AND left_snapshot IS NULL`)
	if err != nil {
		return fmt.Errorf("saving snapshot: removing entries: %w", err)
	}
	defer stmt.Close()
	for _, e := range removed {
		res, err := stmt.ExecContext(ctx, snapID, at, lastSeen, streamID, e.Name, e.Version, common.Checksum(e.Checksum))
		if err != nil {
			return fmt.Errorf("saving snapshot: removing entries: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("saving snapshot: removing entries: %w", err)
		} else if n != 1 {
			return fmt.Errorf("saving snapshot: %w: removed entry %s %s %s is not current", store.ErrConflict, e.Name, e.Version, e.Checksum)
		}
	}
	return nil
}

// checkAdded refuses a diff that adds an entry twice, or (after the removals
// of the same diff) adds one that is still current. SQLite serialises
// writers, so nothing can change between this check and the insert.
func checkAdded(ctx context.Context, tx *sql.Tx, streamID int64, hasParent bool, added []store.Entry) error {
	if err := common.CheckDuplicates(added); err != nil {
		return fmt.Errorf("saving snapshot: %w", err)
	}
	if !hasParent || len(added) == 0 {
		return nil // a stream's first snapshot: nothing is current yet
	}
	stmt, err := tx.PrepareContext(ctx, `SELECT EXISTS (SELECT 1 FROM entries
		WHERE stream_id = ? AND name = ? AND version = ? AND checksum = ? AND left_snapshot IS NULL)`)
	if err != nil {
		return fmt.Errorf("saving snapshot: checking added entries: %w", err)
	}
	defer stmt.Close()
	for _, e := range added {
		var current bool
		if err := stmt.QueryRowContext(ctx, streamID, e.Name, e.Version, common.Checksum(e.Checksum)).Scan(&current); err != nil {
			return fmt.Errorf("saving snapshot: checking added entries: %w", err)
		}
		if current {
			return fmt.Errorf("saving snapshot: %w: added entry %s %s %s is already current", store.ErrConflict, e.Name, e.Version, e.Checksum)
		}
	}
	return nil
}

// addEntries inserts added in multi-row INSERTs; partial is called once,
// after the first of them.
func addEntries(ctx context.Context, tx *sql.Tx, streamID, snapID, at int64, added []store.Entry, partial func()) error {
	if len(added) == 0 {
		partial()
		return nil
	}
	// checkAdded ran first. INSERT OR IGNORE plus a row count: SQLite needs
	// no statement journal for a statement that cannot abort half-way. The
	// per-snapshot constants are integers written into the statement, so
	// each row binds 3 values.
	build := func(n int) string {
		var b strings.Builder
		b.WriteString(`INSERT OR IGNORE INTO entries (stream_id, first_snapshot, first_seen, name, version, checksum) VALUES `)
		row := fmt.Sprintf("(%d,%d,%d,?,?,?)", streamID, snapID, at)
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(row)
		}
		return b.String()
	}
	var full *sql.Stmt
	args := make([]any, 0, insertBatch*3)
	for start := 0; start < len(added); start += insertBatch {
		chunk := added[start:min(start+insertBatch, len(added))]
		args = args[:0]
		for _, e := range chunk {
			args = append(args, e.Name, e.Version, common.Checksum(e.Checksum))
		}
		var (
			res sql.Result
			err error
		)
		if len(chunk) == insertBatch {
			if full == nil {
				if full, err = tx.PrepareContext(ctx, build(insertBatch)); err != nil {
					return fmt.Errorf("saving snapshot: adding entries: %w", err)
				}
				defer full.Close()
			}
			res, err = full.ExecContext(ctx, args...)
		} else {
			res, err = tx.ExecContext(ctx, build(len(chunk)), args...)
		}
		if err != nil {
			return fmt.Errorf("saving snapshot: adding entries: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("saving snapshot: adding entries: %w", err)
		} else if n != int64(len(chunk)) {
			return fmt.Errorf("saving snapshot: %d of %d added entries not inserted", int64(len(chunk))-n, len(chunk))
		}
		if start == 0 {
			partial()
		}
	}
	return nil
}

const snapshotCols = `sn.id, COALESCE(sn.parent_id, 0), st.repository, st.arch, sn.sha256, sn.fetched_at, sn.confirmed_at,
	sn.etag, sn.last_modified, sn.key_names, sn.entry_count, sn.description`

func scanSnapshot(row interface{ Scan(...any) error }, extra ...any) (store.Snapshot, error) {
	var (
		sn                 store.Snapshot
		fetched, confirmed int64
		keys               string
	)
	dest := append([]any{&sn.ID, &sn.Parent, &sn.Repository, &sn.Arch, &sn.SHA256, &fetched, &confirmed,
		&sn.ETag, &sn.LastModified, &keys, &sn.EntryCount, &sn.Description}, extra...)
	if err := row.Scan(dest...); err != nil {
		return store.Snapshot{}, err
	}
	sn.FetchedAt, sn.ConfirmedAt = common.FromMicro(fetched), common.FromMicro(confirmed)
	if err := json.Unmarshal([]byte(keys), &sn.KeyNames); err != nil {
		return store.Snapshot{}, fmt.Errorf("reading snapshot key names: %w", err)
	}
	return sn, nil
}

// LatestSnapshot implements store.SnapshotStore.
func (s *Store) LatestSnapshot(ctx context.Context, repo, arch string) (store.Snapshot, error) {
	if err := s.alive(); err != nil {
		return store.Snapshot{}, err
	}
	var raw []byte
	sn, err := scanSnapshot(s.rdb.QueryRowContext(ctx, `SELECT `+snapshotCols+`, r.raw
		FROM streams st JOIN snapshots sn ON sn.id = st.latest_snapshot
		JOIN snapshot_raw r ON r.stream_id = st.id
		WHERE st.repository = ? AND st.arch = ?`, repo, arch), &raw)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Snapshot{}, fmt.Errorf("latest snapshot of %s/%s: %w", repo, arch, store.ErrNotFound)
	}
	if err != nil {
		return store.Snapshot{}, fmt.Errorf("latest snapshot of %s/%s: %w", repo, arch, err)
	}
	sn.Raw = raw
	return sn, nil
}

// LatestSnapshotID implements store.SnapshotStore.
func (s *Store) LatestSnapshotID(ctx context.Context, repo, arch string) (int64, error) {
	if err := s.alive(); err != nil {
		return 0, err
	}
	var id sql.NullInt64
	err := s.rdb.QueryRowContext(ctx, `SELECT latest_snapshot FROM streams WHERE repository = ? AND arch = ?`, repo, arch).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && !id.Valid) {
		return 0, fmt.Errorf("latest snapshot of %s/%s: %w", repo, arch, store.ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("latest snapshot of %s/%s: %w", repo, arch, err)
	}
	return id.Int64, nil
}

// Snapshot implements store.SnapshotStore.
func (s *Store) Snapshot(ctx context.Context, id int64) (store.Snapshot, error) {
	if err := s.alive(); err != nil {
		return store.Snapshot{}, err
	}
	sn, err := scanSnapshot(s.rdb.QueryRowContext(ctx, `SELECT `+snapshotCols+`
		FROM snapshots sn JOIN streams st ON st.id = sn.stream_id WHERE sn.id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Snapshot{}, fmt.Errorf("snapshot %d: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.Snapshot{}, fmt.Errorf("snapshot %d: %w", id, err)
	}
	return sn, nil
}

// ConfirmFresh implements store.SnapshotStore.
func (s *Store) ConfirmFresh(ctx context.Context, id int64, at time.Time) error {
	return s.write(ctx, "confirm_fresh", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE snapshots SET confirmed_at = MAX(confirmed_at, ?) WHERE id = ?`, common.Micro(at), id)
		if err != nil {
			return fmt.Errorf("confirming snapshot %d: %w", id, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("confirming snapshot %d: %w", id, err)
		} else if n == 0 {
			return fmt.Errorf("confirming snapshot %d: %w", id, store.ErrNotFound)
		}
		return nil
	})
}

// SnapshotsBySHA256 implements store.SnapshotStore.
func (s *Store) SnapshotsBySHA256(ctx context.Context, repo, arch, sha256 string) ([]store.Snapshot, error) {
	if err := s.alive(); err != nil {
		return nil, err
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT `+snapshotCols+`
		FROM streams st JOIN snapshots sn ON sn.stream_id = st.id
		WHERE st.repository = ? AND st.arch = ? AND sn.sha256 = ? ORDER BY sn.id DESC`, repo, arch, strings.ToLower(sha256))
	if err != nil {
		return nil, fmt.Errorf("snapshots by sha256: %w", err)
	}
	defer rows.Close()
	var out []store.Snapshot
	for rows.Next() {
		sn, err := scanSnapshot(rows)
		if err != nil {
			return nil, fmt.Errorf("snapshots by sha256: %w", err)
		}
		out = append(out, sn)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("snapshots by sha256: %w", err)
	}
	return out, nil
}

// entrySelect reads EntryRecords; a current entry's last_seen is its
// stream's latest snapshot's confirmed_at.
const entrySelect = `SELECT st.repository, st.arch, e.name, e.version, e.checksum, e.first_snapshot, e.first_seen,
	COALESCE(e.last_seen, cur.confirmed_at, e.first_seen), COALESCE(e.left_snapshot, 0), COALESCE(e.left_at, 0)
	FROM entries e JOIN streams st ON st.id = e.stream_id
	LEFT JOIN snapshots cur ON cur.id = st.latest_snapshot`

func scanEntries(rows *sql.Rows) ([]store.EntryRecord, error) {
	defer rows.Close()
	var out []store.EntryRecord
	for rows.Next() {
		var (
			r                   store.EntryRecord
			sum                 string
			first, last, leftAt int64
		)
		if err := rows.Scan(&r.Repository, &r.Arch, &r.Name, &r.Version, &sum, &r.FirstSnapshot, &first, &last, &r.LeftSnapshot, &leftAt); err != nil {
			return nil, err
		}
		c, err := common.ParseChecksum(sum)
		if err != nil {
			return nil, err
		}
		r.Checksum = c
		r.FirstSeen, r.LastSeen = common.FromMicro(first), common.FromMicro(last)
		if r.LeftSnapshot != 0 {
			r.LeftAt = common.FromMicro(leftAt)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// EntryHistory implements store.EntryStore.
func (s *Store) EntryHistory(ctx context.Context, repo, arch, name, version string) ([]store.EntryRecord, error) {
	if err := s.alive(); err != nil {
		return nil, err
	}
	rows, err := s.rdb.QueryContext(ctx, entrySelect+`
		WHERE st.repository = ? AND st.arch = ? AND e.name = ? AND e.version = ? ORDER BY e.id`, repo, arch, name, version)
	if err != nil {
		return nil, fmt.Errorf("entry history: %w", err)
	}
	out, err := scanEntries(rows)
	if err != nil {
		return nil, fmt.Errorf("entry history: %w", err)
	}
	return out, nil
}

// LookupEntry implements store.EntryStore.
func (s *Store) LookupEntry(ctx context.Context, name, version, arch string) ([]store.EntryRecord, error) {
	if err := s.alive(); err != nil {
		return nil, err
	}
	rows, err := s.lookup.QueryContext(ctx, arch, name, version)
	if err != nil {
		return nil, fmt.Errorf("entry lookup: %w", err)
	}
	out, err := scanEntries(rows)
	if err != nil {
		return nil, fmt.Errorf("entry lookup: %w", err)
	}
	return out, nil
}

// EntriesByChecksum implements store.EntryStore.
func (s *Store) EntriesByChecksum(ctx context.Context, c apk.Checksum) ([]store.EntryRecord, error) {
	if err := s.alive(); err != nil {
		return nil, err
	}
	if c.IsZero() {
		return nil, fmt.Errorf("entries by checksum: %w: zero checksum", store.ErrInvalidArgument)
	}
	rows, err := s.rdb.QueryContext(ctx, entrySelect+` WHERE e.checksum = ? ORDER BY e.id`, common.Checksum(c))
	if err != nil {
		return nil, fmt.Errorf("entries by checksum: %w", err)
	}
	out, err := scanEntries(rows)
	if err != nil {
		return nil, fmt.Errorf("entries by checksum: %w", err)
	}
	return out, nil
}

// SeenEntries implements store.EntryStore.
func (s *Store) SeenEntries(ctx context.Context, repo, arch string) ([]store.EntryRecord, error) {
	if err := s.alive(); err != nil {
		return nil, err
	}
	rows, err := s.rdb.QueryContext(ctx, entrySelect+`
		WHERE e.stream_id = (SELECT id FROM streams WHERE repository = ? AND arch = ?)`, repo, arch)
	if err != nil {
		return nil, fmt.Errorf("seen entries: %w", err)
	}
	out, err := scanEntries(rows)
	if err != nil {
		return nil, fmt.Errorf("seen entries: %w", err)
	}
	return out, nil
}

// TryLockRefresh implements store.Coordinator within this process.
func (s *Store) TryLockRefresh(ctx context.Context, repo, arch string) (func(), bool, error) {
	if err := s.alive(); err != nil {
		return nil, false, err
	}
	unlock, ok := s.locks.TryLock(repo + "\x00" + arch)
	return unlock, ok, nil
}

// WatchSnapshots implements store.Coordinator for snapshots saved through
// this Store value.
func (s *Store) WatchSnapshots(ctx context.Context) (<-chan store.SnapshotNotice, error) {
	if err := s.alive(); err != nil {
		return nil, err
	}
	return s.notify.Watch(ctx), nil
}

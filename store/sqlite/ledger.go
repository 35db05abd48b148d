package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/vouchdev/vouch/store"
	"github.com/vouchdev/vouch/store/internal/common"
)

// AppendAttestation implements store.Ledger.
func (s *Store) AppendAttestation(ctx context.Context, a store.Attestation) (string, error) {
	if err := common.ValidateAttestation(a); err != nil {
		return "", fmt.Errorf("appending attestation: %w", err)
	}
	if err := s.alive(); err != nil {
		return "", err
	}
	if a.ID == "" {
		a.ID = store.NewID(a.Time)
	}
	digests := 0
	for _, sub := range a.Subjects {
		digests += len(sub.Digest)
	}
	queries := []string{insertAttestation}
	for _, r := range []struct {
		ins  rowInsert
		rows int
	}{{insertDigests, digests}, {insertPackages, len(a.Packages)}, {insertPredicates, len(a.Predicates)}} {
		for _, n := range r.ins.chunks(r.rows) {
			queries = append(queries, r.ins.sql(n))
		}
	}
	s.stmts.warm(ctx, queries...)
	// Compressing is most of an append's CPU: done before the entry is
	// queued for the writer, so concurrent appends compress in parallel.
	r := &appendReq{ctx: ctx, a: a, bundles: make([]encodedBundle, len(a.Predicates)), done: make(chan error, 1)}
	for i, p := range a.Predicates {
		r.bundles[i].codec, r.bundles[i].data = s.codec.encode(nonNilBytes(p.Bundle))
	}
	select {
	case s.appends <- r:
	case <-s.stop:
		return "", store.ErrClosed
	}
	// Once queued the entry is written or refused as a whole; the caller
	// waits for that outcome (the commit ahead of it and its own, each
	// bounded by the busy timeout) rather than for its context, so that an
	// error here always means nothing was stored.
	if err := <-r.done; err != nil {
		return "", err
	}
	return a.ID, nil
}

// writeLedgerRun copies the keys of every pending ledger row (those above
// the newest run) into ledger_keys as a new run, in key order (migration 4
// explains the layout).
func (s *Store) writeLedgerRun(ctx context.Context) error {
	n := s.pending.Swap(0)
	err := s.write(ctx, "ledger_run", func(tx *sql.Tx) error {
		var from, to int64
		if err := tx.QueryRowContext(ctx, `SELECT (SELECT COALESCE(MAX(upto_seq), 0) FROM ledger_runs), (SELECT COALESCE(MAX(seq), 0) FROM attestations)`).Scan(&from, &to); err != nil {
			return fmt.Errorf("writing ledger run: %w", err)
		}
		if to <= from {
			return nil
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO ledger_runs (upto_seq) VALUES (?)`, to)
		if err != nil {
			return fmt.Errorf("writing ledger run: %w", err)
		}
		run, err := res.LastInsertId()
		if err != nil {
			return fmt.Errorf("writing ledger run: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO ledger_keys (run, kind, a, b, attestation_seq)
			SELECT ?1, 'c', checksum, '', attestation_seq FROM attestation_packages WHERE attestation_seq > ?2 AND attestation_seq <= ?3
			UNION ALL SELECT ?1, 'n', name, version, attestation_seq FROM attestation_packages WHERE attestation_seq > ?2 AND attestation_seq <= ?3
			ON CONFLICT DO NOTHING`, run, from, to); err != nil {
			return fmt.Errorf("writing ledger run: %w", err)
		}
		return nil
	})
	if err != nil {
		s.pending.Add(n)
	}
	return err
}

// pendingSeq is the SQL for the last ledger seq covered by a run: rows above
// it are read directly.
const pendingSeq = `(SELECT COALESCE(MAX(upto_seq), 0) FROM ledger_runs)`

// packageFilter is the condition "the entry lists such a package": keyCond
// over the runs' keys (k), then pendingCond over the pending rows (p); the
// caller passes the arguments of both, in that order.
func packageFilter(keyCond, pendingCond string) string {
	return `a.seq IN (SELECT k.attestation_seq FROM ledger_runs r CROSS JOIN ledger_keys k
		WHERE k.run = r.run AND ` + keyCond + `
		UNION ALL SELECT p.attestation_seq FROM attestation_packages p
		WHERE p.attestation_seq > ` + pendingSeq + ` AND ` + pendingCond + `)`
}

const insertAttestation = `INSERT INTO attestations (id, created_at, builder, verdict, subjects) VALUES (?, ?, ?, ?, ?)`

func nonNilMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func nonNilBytes(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// Attestation implements store.Ledger.
func (s *Store) Attestation(ctx context.Context, id string) (store.Attestation, error) {
	if err := s.alive(); err != nil {
		return store.Attestation{}, err
	}
	out, err := s.loadAttestations(ctx, `SELECT seq, id, created_at, builder, verdict, subjects FROM attestations WHERE id = ?`, id)
	if err != nil {
		return store.Attestation{}, fmt.Errorf("attestation %s: %w", id, err)
	}
	if len(out) == 0 {
		return store.Attestation{}, fmt.Errorf("attestation %s: %w", id, store.ErrNotFound)
	}
	return out[0], nil
}

// ListAttestations implements store.Ledger.
func (s *Store) ListAttestations(ctx context.Context, q store.AttestationQuery) ([]store.Attestation, string, error) {
	if err := s.alive(); err != nil {
		return nil, "", err
	}
	cur, err := common.DecodeAttestationToken(q.PageToken)
	if err != nil {
		return nil, "", fmt.Errorf("listing attestations: %w", err)
	}
	var (
		where []string
		args  []any
	)
	if q.SubjectDigest != "" {
		alg, v, err := common.ParseSubjectDigest(q.SubjectDigest)
		if err != nil {
			return nil, "", fmt.Errorf("listing attestations: %w", err)
		}
		where = append(where, `a.seq IN (SELECT attestation_seq FROM attestation_digests WHERE value = ? AND alg = ?)`)
		args = append(args, v, alg)
	}
	if q.PackageVersion != "" && q.PackageName == "" {
		return nil, "", fmt.Errorf("listing attestations: %w: package version without name", store.ErrInvalidArgument)
	}
	// Package filters: a seek per ledger run, then the pending rows.
	if q.PackageName != "" {
		if q.PackageVersion != "" {
			where = append(where, packageFilter(`k.kind = 'n' AND k.a = ? AND k.b = ?`, `p.name = ? AND p.version = ?`))
			args = append(args, q.PackageName, q.PackageVersion, q.PackageName, q.PackageVersion)
		} else {
			where = append(where, packageFilter(`k.kind = 'n' AND k.a = ?`, `p.name = ?`))
			args = append(args, q.PackageName, q.PackageName)
		}
	}
	if !q.Checksum.IsZero() {
		sum := common.Checksum(q.Checksum)
		where = append(where, packageFilter(`k.kind = 'c' AND k.a = ? AND k.b = ''`, `p.checksum = ?`))
		args = append(args, sum, sum)
	}
	if !q.Since.IsZero() {
		where = append(where, `a.created_at >= ?`)
		args = append(args, common.Micro(q.Since))
	}
	if !q.Until.IsZero() {
		where = append(where, `a.created_at < ?`)
		args = append(args, common.Micro(q.Until))
	}
	if cur != nil {
		where = append(where, `(a.created_at < ? OR (a.created_at = ? AND a.id < ?))`)
		args = append(args, cur.TimeMicro, cur.TimeMicro, cur.ID)
	}
	size := common.PageSize(q.PageSize)
	query := `SELECT a.seq, a.id, a.created_at, a.builder, a.verdict, a.subjects FROM attestations a`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, ` AND `)
	}
	query += fmt.Sprintf(` ORDER BY a.created_at DESC, a.id DESC LIMIT %d`, size+1)
	out, err := s.loadAttestations(ctx, query, args...)
	if err != nil {
		return nil, "", fmt.Errorf("listing attestations: %w", err)
	}
	next := ""
	if len(out) > size {
		out = out[:size]
		last := out[size-1]
		next = common.EncodeAttestationToken(common.AttestationCursor{TimeMicro: common.Micro(last.Time), ID: last.ID})
	}
	return out, next, nil
}

// loadAttestations runs a query over attestations (seq, id, created_at,
// builder, verdict, subjects) and completes every row with its packages and
// predicates. Reads run in one transaction so a row and its children agree.
func (s *Store) loadAttestations(ctx context.Context, query string, args ...any) ([]store.Attestation, error) {
	tx, err := s.rdb.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	var (
		out  []store.Attestation
		seqs []int64
	)
	for rows.Next() {
		var (
			a        store.Attestation
			seq, at  int64
			subjects string
		)
		if err := rows.Scan(&seq, &a.ID, &at, &a.Builder, &a.Verdict, &subjects); err != nil {
			rows.Close()
			return nil, err
		}
		a.Time = common.FromMicro(at)
		if a.Subjects, err = common.DecodeSubjects(subjects); err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, a)
		seqs = append(seqs, seq)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, nil
	}
	idx := make(map[int64]int, len(seqs))
	in := make([]string, len(seqs))
	seqArgs := make([]any, len(seqs))
	for i, seq := range seqs {
		idx[seq] = i
		in[i] = "?"
		seqArgs[i] = seq
	}
	list := strings.Join(in, ",")
	prow, err := tx.QueryContext(ctx, `SELECT attestation_seq, name, version, arch, repository, checksum, datahash, verdict, index_sha256
		FROM attestation_packages WHERE attestation_seq IN (`+list+`) ORDER BY attestation_seq, idx`, seqArgs...)
	if err != nil {
		return nil, err
	}
	for prow.Next() {
		var (
			seq int64
			p   store.AttestedPackage
			sum string
		)
		if err := prow.Scan(&seq, &p.Name, &p.Version, &p.Arch, &p.Repository, &sum, &p.DataHash, &p.Verdict, &p.IndexSHA256); err != nil {
			prow.Close()
			return nil, err
		}
		if p.Checksum, err = common.ParseChecksum(sum); err != nil {
			prow.Close()
			return nil, err
		}
		i := idx[seq]
		out[i].Packages = append(out[i].Packages, p)
	}
	prow.Close()
	if err := prow.Err(); err != nil {
		return nil, err
	}
	drow, err := tx.QueryContext(ctx, `SELECT attestation_seq, type, digest, bundle, codec
		FROM attestation_predicates WHERE attestation_seq IN (`+list+`) ORDER BY attestation_seq, idx`, seqArgs...)
	if err != nil {
		return nil, err
	}
	defer drow.Close()
	for drow.Next() {
		var (
			seq           int64
			p             store.Predicate
			digest, codec string
			raw           []byte
		)
		if err := drow.Scan(&seq, &p.Type, &digest, &raw, &codec); err != nil {
			return nil, err
		}
		if p.Bundle, err = s.codec.decode(codec, raw); err != nil {
			return nil, fmt.Errorf("reading bundle of attestation %d: %w", seq, err)
		}
		if err := json.Unmarshal([]byte(digest), &p.Digest); err != nil {
			return nil, fmt.Errorf("reading predicate digest: %w", err)
		}
		i := idx[seq]
		out[i].Predicates = append(out[i].Predicates, p)
	}
	if err := drow.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

func notFound(err error) bool { return errors.Is(err, sql.ErrNoRows) }

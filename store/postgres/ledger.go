package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vouchdev/vouch/store"
	"github.com/vouchdev/vouch/store/internal/common"
)

// AppendAttestation implements store.Ledger. The entry and all its rows are
// one transaction, committed (and so durable, with the server's default
// synchronous_commit) before it returns.
func (s *Store) AppendAttestation(ctx context.Context, a store.Attestation) (string, error) {
	if err := common.ValidateAttestation(a); err != nil {
		return "", fmt.Errorf("appending attestation: %w", err)
	}
	if a.ID == "" {
		a.ID = store.NewID(a.Time)
	}
	err := s.write(ctx, "append_attestation", func(tx pgx.Tx) error {
		var seq int64
		err := tx.QueryRow(ctx, `INSERT INTO attestations (id, created_at, builder, verdict, subjects) VALUES ($1, $2, $3, $4, $5) RETURNING seq`,
			a.ID, common.Trunc(a.Time), a.Builder, a.Verdict, common.EncodeSubjects(a.Subjects)).Scan(&seq)
		if isUnique(err) {
			return fmt.Errorf("appending attestation %s: %w: id exists", a.ID, store.ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("appending attestation: %w", err)
		}
		var batch pgx.Batch
		for _, sub := range a.Subjects {
			for alg, v := range sub.Digest {
				batch.Queue(`INSERT INTO attestation_digests (attestation_seq, alg, value) VALUES ($1, $2, $3)`, seq, alg, strings.ToLower(v))
			}
		}
		if len(a.Packages) > 0 {
			n := len(a.Packages)
			idx, names, versions, arches, repos, sums, datas, verdicts, indexes := make([]int32, n), make([]string, n), make([]string, n),
				make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
			for i, p := range a.Packages {
				idx[i], names[i], versions[i], arches[i], repos[i] = int32(i), p.Name, p.Version, p.Arch, p.Repository
				sums[i], datas[i], verdicts[i], indexes[i] = common.Checksum(p.Checksum), p.DataHash, p.Verdict, p.IndexSHA256
			}
			batch.Queue(`INSERT INTO attestation_packages
				(attestation_seq, idx, name, version, arch, repository, checksum, datahash, verdict, index_sha256)
				SELECT $1, * FROM unnest($2::int[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[])`,
				seq, idx, names, versions, arches, repos, sums, datas, verdicts, indexes)
		}
		for i, p := range a.Predicates {
			digest := p.Digest
			if digest == nil {
				digest = map[string]string{}
			}
			bundle := p.Bundle
			if bundle == nil {
				bundle = []byte{}
			}
			batch.Queue(`INSERT INTO attestation_predicates (attestation_seq, idx, type, digest, bundle) VALUES ($1, $2, $3, $4, $5)`,
				seq, i, p.Type, common.JSON(digest), bundle)
		}
		if batch.Len() > 0 {
			if err := tx.SendBatch(ctx, &batch).Close(); err != nil {
				return fmt.Errorf("appending attestation rows: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return a.ID, nil
}

// Attestation implements store.Ledger.
func (s *Store) Attestation(ctx context.Context, id string) (store.Attestation, error) {
	if err := s.alive(); err != nil {
		return store.Attestation{}, err
	}
	out, err := s.loadAttestations(ctx, `SELECT seq, id, created_at, builder, verdict, subjects FROM attestations WHERE id = $1`, id)
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
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if q.SubjectDigest != "" {
		alg, v, err := common.ParseSubjectDigest(q.SubjectDigest)
		if err != nil {
			return nil, "", fmt.Errorf("listing attestations: %w", err)
		}
		where = append(where, `a.seq IN (SELECT attestation_seq FROM attestation_digests WHERE value = `+arg(v)+` AND alg = `+arg(alg)+`)`)
	}
	if q.PackageVersion != "" && q.PackageName == "" {
		return nil, "", fmt.Errorf("listing attestations: %w: package version without name", store.ErrInvalidArgument)
	}
	if q.PackageName != "" {
		if q.PackageVersion != "" {
			where = append(where, `a.seq IN (SELECT attestation_seq FROM attestation_packages WHERE name = `+arg(q.PackageName)+` AND version = `+arg(q.PackageVersion)+`)`)
		} else {
			where = append(where, `a.seq IN (SELECT attestation_seq FROM attestation_packages WHERE name = `+arg(q.PackageName)+`)`)
		}
	}
	if !q.Checksum.IsZero() {
		where = append(where, `a.seq IN (SELECT attestation_seq FROM attestation_packages WHERE checksum = `+arg(common.Checksum(q.Checksum))+`)`)
	}
	if !q.Since.IsZero() {
		where = append(where, `a.created_at >= `+arg(common.Trunc(q.Since)))
	}
	if !q.Until.IsZero() {
		where = append(where, `a.created_at < `+arg(common.Trunc(q.Until)))
	}
	if cur != nil {
		t := arg(common.FromMicro(cur.TimeMicro))
		where = append(where, `(a.created_at < `+t+` OR (a.created_at = `+t+` AND a.id < `+arg(cur.ID)+`))`)
	}
	size := common.PageSize(q.PageSize)
	query := `SELECT a.seq, a.id, a.created_at, a.builder, a.verdict, a.subjects FROM attestations a`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, ` AND `)
	}
	// ids are COLLATE "C" (migration 3): they compare bytewise, as in
	// SQLite, and the order matches the attestations_time index.
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
// predicates (written in the same transaction as the row, so always there).
func (s *Store) loadAttestations(ctx context.Context, query string, args ...any) ([]store.Attestation, error) {
	rows, err := s.pool.Query(ctx, query, args...)
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
			seq      int64
			at       time.Time
			subjects string
		)
		if err := rows.Scan(&seq, &a.ID, &at, &a.Builder, &a.Verdict, &subjects); err != nil {
			rows.Close()
			return nil, err
		}
		a.Time = utc(at)
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
	for i, seq := range seqs {
		idx[seq] = i
	}
	prow, err := s.pool.Query(ctx, `SELECT attestation_seq, name, version, arch, repository, checksum, datahash, verdict, index_sha256
		FROM attestation_packages WHERE attestation_seq = ANY($1) ORDER BY attestation_seq, idx`, seqs)
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
	drow, err := s.pool.Query(ctx, `SELECT attestation_seq, type, digest, bundle
		FROM attestation_predicates WHERE attestation_seq = ANY($1) ORDER BY attestation_seq, idx`, seqs)
	if err != nil {
		return nil, err
	}
	defer drow.Close()
	for drow.Next() {
		var (
			seq    int64
			p      store.Predicate
			digest string
		)
		if err := drow.Scan(&seq, &p.Type, &digest, &p.Bundle); err != nil {
			return nil, err
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

func notFound(err error) bool { return errors.Is(err, pgx.ErrNoRows) }

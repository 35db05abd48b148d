package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/vouchdev/vouch/store"
	"github.com/vouchdev/vouch/store/internal/common"
)

// Ledger appends are group-committed: AppendAttestation hands its entry to
// one writer goroutine, which takes every entry waiting at that moment
// (appends that arrived while the previous commit ran) into one
// transaction and commits it once. Each caller still returns only after the
// commit that made its entry durable; an entry that fails (an id conflict)
// is rolled back to its own savepoint and fails alone. There is no delay
// to gather a batch: a lone append commits at once, and batches form only
// when appends queue behind a commit, which is when the fsync and the
// WAL frames of the tables' shared pages are worth sharing.
const (
	// maxBatchEntries and maxBatchRows bound one group commit.
	maxBatchEntries = 64
	maxBatchRows    = 16384
)

// appendReq is one AppendAttestation waiting for the ledger writer.
type appendReq struct {
	ctx     context.Context
	a       store.Attestation
	bundles []encodedBundle
	err     error      // this entry's own failure, set by the writer
	done    chan error // the outcome, sent once (tell)
	told    bool
}

// tell sends r's outcome, once; later calls do nothing.
func (r *appendReq) tell(err error) {
	if !r.told {
		r.told = true
		r.done <- err
	}
}

// errWriterPanic is the cause given to appends whose batch panicked.
var errWriterPanic = errors.New("ledger writer failed unexpectedly")

type encodedBundle struct {
	codec string
	data  []byte
}

// ledgerWriter runs until Close: it commits waiting appends in batches.
func (s *Store) ledgerWriter() {
	defer close(s.ledgerDone)
	batch := make([]*appendReq, 0, maxBatchEntries)
	for {
		var first *appendReq
		select {
		case <-s.stop:
			return
		case first = <-s.appends:
		}
		batch = append(batch[:0], first)
		rows := len(first.a.Packages)
	drain:
		for len(batch) < maxBatchEntries && rows < maxBatchRows {
			select {
			case r := <-s.appends:
				batch = append(batch, r)
				rows += len(r.a.Packages)
			default:
				break drain
			}
		}
		s.commitAppends(batch)
	}
}

// commitAppends writes batch in one transaction and tells each caller.
// It runs on the writer goroutine, where no RPC recovery reaches: a panic
// while writing (write rolls the transaction back) fails the batch's
// callers with errWriterPanic and the writer goes on.
func (s *Store) commitAppends(batch []*appendReq) {
	defer func() {
		if p := recover(); p != nil {
			for _, r := range batch {
				r.tell(fmt.Errorf("appending attestation: %w: %v", errWriterPanic, p))
			}
		}
	}()
	live := batch[:0:0]
	for _, r := range batch {
		// A caller that gave up before its entry was written gets its
		// context's error and nothing of it is stored.
		if err := r.ctx.Err(); err != nil {
			r.tell(fmt.Errorf("appending attestation: %w", err))
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	ctx := context.Background() // one caller's deadline must not abort the others' commit
	rows := 0
	err := s.write(ctx, "append_attestation", func(tx *sql.Tx) error {
		for _, r := range live {
			if _, err := tx.ExecContext(ctx, `SAVEPOINT entry`); err != nil {
				return fmt.Errorf("appending attestation: %w", err)
			}
			r.err = s.insertAttestation(ctx, tx, r)
			if r.err != nil {
				// A failed statement leaves the transaction open (a
				// constraint) or rolls it back (I/O, full disk); in the
				// second case the savepoint is gone and the whole batch
				// fails.
				if _, err := tx.ExecContext(ctx, `ROLLBACK TO entry`); err != nil {
					return fmt.Errorf("appending attestation: %w (rolling back: %v)", r.err, err)
				}
			} else {
				rows += len(r.a.Packages)
			}
			if _, err := tx.ExecContext(ctx, `RELEASE entry`); err != nil {
				return fmt.Errorf("appending attestation: %w", err)
			}
		}
		return nil
	})
	if err == nil && s.pending.Add(int64(rows)) >= int64(s.cfg.IndexBatch) {
		// The entries are durable; their callers wait for the run too (a
		// few tens of ms once per IndexBatch rows), so that an append that
		// returned has its run written. A failed run is retried after the
		// next append and meanwhile queries read the rows as pending.
		s.tryLedgerRun(ctx)
	}
	for _, r := range live {
		if err != nil {
			r.tell(err)
		} else {
			r.tell(r.err)
		}
	}
}

// tryLedgerRun writes a ledger run after a committed batch. It is best
// effort, a panic included: the batch's entries are durable whatever
// happens here, and their callers must be told so.
func (s *Store) tryLedgerRun(ctx context.Context) {
	defer func() { _ = recover() }()
	_ = s.writeLedgerRun(ctx)
}

// insertAttestation writes one entry's rows in tx.
func (s *Store) insertAttestation(ctx context.Context, tx *sql.Tx, r *appendReq) error {
	a := r.a
	ins, err := s.stmts.get(ctx, tx, insertAttestation)
	if err != nil {
		return fmt.Errorf("appending attestation: %w", err)
	}
	res, err := ins.ExecContext(ctx, a.ID, common.Micro(a.Time), a.Builder, a.Verdict, common.EncodeSubjects(a.Subjects))
	ins.Close()
	if isUnique(err) {
		return fmt.Errorf("appending attestation %s: %w: id exists", a.ID, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("appending attestation: %w", err)
	}
	seq, err := res.LastInsertId()
	if err != nil {
		return fmt.Errorf("appending attestation: %w", err)
	}
	var args []any
	for _, sub := range a.Subjects {
		for alg, v := range sub.Digest {
			args = append(args, seq, alg, strings.ToLower(v))
		}
	}
	if err := s.insertRows(ctx, tx, insertDigests, args); err != nil {
		return fmt.Errorf("appending attestation subjects: %w", err)
	}
	args = args[:0]
	for i, p := range a.Packages {
		args = append(args, seq, i, p.Name, p.Version, p.Arch, p.Repository, common.Checksum(p.Checksum), p.DataHash, p.Verdict, p.IndexSHA256)
	}
	if err := s.insertRows(ctx, tx, insertPackages, args); err != nil {
		return fmt.Errorf("appending attestation packages: %w", err)
	}
	args = args[:0]
	for i, p := range a.Predicates {
		args = append(args, seq, i, p.Type, common.JSON(nonNilMap(p.Digest)), r.bundles[i].data, r.bundles[i].codec)
	}
	if err := s.insertRows(ctx, tx, insertPredicates, args); err != nil {
		return fmt.Errorf("appending attestation predicates: %w", err)
	}
	return nil
}

package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	vouchv1 "github.com/vouchdev/vouch/proto/vouch/v1"
	"github.com/vouchdev/vouch/store"

	// Store backends for reading the ledger directly, and the SQLite
	// driver for integrity_check.
	_ "github.com/vouchdev/vouch/store/postgres"
	_ "github.com/vouchdev/vouch/store/sqlite"
	_ "modernc.org/sqlite"
)

// recordedAttestation is one attestation as the client received it.
type recordedAttestation struct {
	Subject         string `json:"subject"`
	PredicateType   string `json:"predicate_type"`
	StatementSHA256 string `json:"statement_sha256"`
	BundleSHA256    string `json:"bundle_sha256"`
}

// record is one response with attestations, as appended by a client.
type record struct {
	Round        int                   `json:"round"`
	Replica      int                   `json:"replica"`
	LedgerID     string                `json:"ledger_id"`
	Subject      string                `json:"subject"`          // first subject digest
	Others       []string              `json:"others,omitempty"` // further subject digests
	Attestations []recordedAttestation `json:"attestations"`
}

func (r record) subjects() []string {
	return append([]string{r.Subject}, r.Others...)
}

// recorder appends records to a file, fsync'd after each.
type recorder struct {
	mu   sync.Mutex
	f    *os.File
	path string
}

func openRecorder(path string) (*recorder, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("records file: %w", err)
	}
	return &recorder{f: f, path: path}, nil
}

func (r *recorder) append(rec record) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encoding record: %w", err)
	}
	b = append(b, '\n')
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := r.f.Write(b); err != nil {
		return fmt.Errorf("writing record: %w", err)
	}
	if err := r.f.Sync(); err != nil {
		return fmt.Errorf("fsync of the records file: %w", err)
	}
	return nil
}

func (r *recorder) close() { _ = r.f.Close() }

// readRecords reads the records file back from disk.
func readRecords(path string) ([]record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading records: %w", err)
	}
	defer f.Close()
	var out []record
	br := bufio.NewReader(f)
	for line := 1; ; line++ {
		b, err := br.ReadBytes('\n')
		if errors.Is(err, io.EOF) && len(b) == 0 {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading records: line %d: %w", line, err)
		}
		var rec record
		if err := json.Unmarshal(b, &rec); err != nil {
			return nil, fmt.Errorf("reading records: line %d: %w", line, err)
		}
		out = append(out, rec)
	}
}

// key identifies an attestation within a ledger entry.
type key struct{ subject, predicate string }

type digests struct{ statement, bundle string }

func bundleSHA(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// compare checks a ledger entry's subjects and attestations against what
// the client received; it returns "" or what differs.
func compare(rec record, subjects []string, got map[key]digests) string {
	want := rec.subjects()
	slices.Sort(want)
	slices.Sort(subjects)
	if !slices.Equal(want, subjects) {
		return fmt.Sprintf("subjects %v, client received %v", subjects, want)
	}
	if len(got) != len(rec.Attestations) {
		return fmt.Sprintf("%d attestations, client received %d", len(got), len(rec.Attestations))
	}
	for _, a := range rec.Attestations {
		d, ok := got[key{a.Subject, a.PredicateType}]
		switch {
		case !ok:
			return fmt.Sprintf("no %s attestation for %s", a.PredicateType, a.Subject)
		case d.bundle != a.BundleSHA256:
			return fmt.Sprintf("%s bundle for %s has sha256 %s, client received %s", a.PredicateType, a.Subject, d.bundle, a.BundleSHA256)
		case d.statement != a.StatementSHA256:
			return fmt.Sprintf("%s statement for %s has sha256 %s, client received %s", a.PredicateType, a.Subject, d.statement, a.StatementSHA256)
		}
	}
	return ""
}

// prove checks, after the last round, every record against the ledger
// (through the restarted vouchd and through the store package) and the
// store's integrity, prints the summary and fails on any violation.
func (e *env) prove(ctx context.Context, storeURL, dbPath string) error {
	recs, err := readRecords(e.rec.path)
	if err != nil {
		return err
	}
	byID := map[string]record{}
	for _, r := range recs {
		if _, dup := byID[r.LedgerID]; dup {
			e.violate("ledger id %s was handed out twice", r.LedgerID)
		}
		byID[r.LedgerID] = r
	}

	// Through the API of the restarted replicas.
	viaAPI, missing := 0, 0
	for i, rec := range recs {
		r := e.replicas[i%len(e.replicas)]
		cctx, cancel := context.WithTimeout(ctx, e.o.rpcTimeout)
		resp, err := vouchv1.NewReaderServiceClient(r.conn).GetLedgerEntry(cctx, &vouchv1.GetLedgerEntryRequest{Id: rec.LedgerID, IncludeBundles: true})
		cancel()
		if status.Code(err) == codes.NotFound {
			missing++
			e.violate("attestation without a ledger entry: id %s (round %d, replica %d, subject %s)", rec.LedgerID, rec.Round, rec.Replica, rec.Subject)
			continue
		}
		if err != nil {
			return fmt.Errorf("GetLedgerEntry %s on replica %d: %w", rec.LedgerID, r.idx, err)
		}
		ent := resp.GetEntry()
		var subs []string
		for _, s := range ent.GetSubjects() {
			subs = append(subs, "sha256:"+s.GetDigest()["sha256"])
		}
		got := map[key]digests{}
		for _, a := range ent.GetAttestations() {
			got[key{a.GetSubjectDigest(), a.GetPredicateType()}] = digests{a.GetStatementSha256(), bundleSHA(a.GetBundle())}
		}
		if d := compare(rec, subs, got); d != "" {
			e.violate("ledger entry %s (via replica %d) differs from what the client received: %s", rec.LedgerID, r.idx, d)
			continue
		}
		viaAPI++
	}
	ledger := map[string][]string{} // id → subject digests
	for _, r := range e.replicas {
		ids, err := listLedger(ctx, r, e.o.rpcTimeout)
		if err != nil {
			return err
		}
		if r.idx == 0 {
			ledger = ids
		} else if len(ids) != len(ledger) {
			e.violate("replica %d lists %d ledger entries, replica 0 lists %d", r.idx, len(ids), len(ledger))
		}
	}
	perSubject := map[string]int{}
	unreceived := 0
	for id, subs := range ledger {
		for _, s := range subs {
			perSubject[s]++
		}
		if _, ok := byID[id]; ok {
			continue
		}
		unreceived++
		for _, s := range subs {
			if _, failed := e.failed[s]; !failed {
				e.violate("ledger entry %s for subject %s, whose request neither failed nor was recorded", id, s)
			}
		}
	}
	for s, n := range perSubject {
		if n > 1 {
			e.violate("subject %s has %d ledger entries (one request each)", s, n)
		}
	}

	// Clean shutdown of every replica.
	clean := 0
	for _, r := range e.replicas {
		if _, err := r.proc.Term(time.Minute); err != nil {
			e.violate("replica %d did not shut down cleanly: %v", r.idx, err)
		} else {
			clean++
		}
	}

	// Directly through the store package, with vouchd stopped.
	viaStore, storeCount, err := e.proveStore(ctx, storeURL, recs)
	if err != nil {
		return err
	}
	if storeCount != len(ledger) {
		e.violate("the store lists %d ledger entries, the API %d", storeCount, len(ledger))
	}
	integrity := "n/a (postgres)"
	if e.o.store == "sqlite" {
		if integrity, err = integrityCheck(ctx, dbPath); err != nil {
			return err
		}
		if integrity != "ok" {
			e.violate("integrity_check of the final database: %s", integrity)
		}
	}
	restarts, errLines, firstErr := 0, 0, ""
	for _, r := range e.replicas {
		restarts += r.starts - 1
		for _, l := range r.logs {
			n, first := errorLines(l)
			errLines += n
			if firstErr == "" {
				firstErr = first
			}
		}
	}
	failedReqs := len(e.failed) / e.o.subjects

	fmt.Println("\n## Ledger proof")
	fmt.Println()
	fmt.Println("| check | result |")
	fmt.Println("|---|---|")
	fmt.Printf("| responses with attestations received (records file, fsync'd) | %d |\n", len(recs))
	fmt.Printf("| … whose ledger entry has the same subjects, statements and bundles (GetLedgerEntry) | %d / %d |\n", viaAPI, len(recs))
	fmt.Printf("| … the same, read through the store package | %d / %d |\n", viaStore, len(recs))
	fmt.Printf("| attestations without a ledger entry (must be 0) | %d |\n", missing)
	fmt.Printf("| ledger entries (ListLedgerEntries) | %d |\n", len(ledger))
	fmt.Printf("| ledger entries no client received (written, response lost in a kill) | %d (requests that failed: %d) |\n", unreceived, failedReqs)
	fmt.Printf("| restarts after SIGKILL that reached SERVING | %d / %d |\n", restarts, e.o.rounds)
	fmt.Printf("| clean SIGTERM shutdowns at the end | %d / %d |\n", clean, len(e.replicas))
	fmt.Printf("| integrity_check of the final database | %s |\n", integrity)
	fmt.Printf("| ERROR lines in vouchd's logs | %d |\n", errLines)
	if firstErr != "" {
		fmt.Printf("\nfirst ERROR line: %s\n", clip(firstErr, 300))
	}
	if len(e.violations) > 0 {
		fmt.Println()
		for _, v := range e.violations {
			fmt.Println("FAIL", v)
		}
		return fmt.Errorf("%d violation(s)", len(e.violations))
	}
	fmt.Println("\nno violations")
	return nil
}

// listLedger pages through ListLedgerEntries.
func listLedger(ctx context.Context, r *replica, timeout time.Duration) (map[string][]string, error) {
	out := map[string][]string{}
	rc := vouchv1.NewReaderServiceClient(r.conn)
	token := ""
	for {
		cctx, cancel := context.WithTimeout(ctx, timeout)
		resp, err := rc.ListLedgerEntries(cctx, &vouchv1.ListLedgerEntriesRequest{PageSize: 1000, PageToken: token})
		cancel()
		if err != nil {
			return nil, fmt.Errorf("ListLedgerEntries on replica %d: %w", r.idx, err)
		}
		for _, ent := range resp.GetEntries() {
			var subs []string
			for _, s := range ent.GetSubjects() {
				subs = append(subs, "sha256:"+s.GetDigest()["sha256"])
			}
			if _, dup := out[ent.GetId()]; dup {
				return nil, fmt.Errorf("ListLedgerEntries on replica %d repeats id %s", r.idx, ent.GetId())
			}
			out[ent.GetId()] = subs
		}
		if token = resp.GetNextPageToken(); token == "" {
			return out, nil
		}
	}
}

// proveStore reads every recorded entry through the store package and
// counts the ledger.
func (e *env) proveStore(ctx context.Context, storeURL string, recs []record) (matched, count int, err error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	st, err := store.Open(ctx, storeURL)
	if err != nil {
		return 0, 0, fmt.Errorf("opening the store: %w", err)
	}
	defer func() { _ = st.Close() }()
	for _, rec := range recs {
		a, err := st.Attestation(ctx, rec.LedgerID)
		if errors.Is(err, store.ErrNotFound) {
			e.violate("store: no ledger entry %s", rec.LedgerID)
			continue
		}
		if err != nil {
			return 0, 0, fmt.Errorf("store: reading %s: %w", rec.LedgerID, err)
		}
		var subs []string
		for _, s := range a.Subjects {
			subs = append(subs, "sha256:"+s.Digest["sha256"])
		}
		// Predicates are stored subject by subject, the same number each.
		got := map[key]digests{}
		if len(a.Subjects) > 0 {
			per := len(a.Predicates) / len(a.Subjects)
			for i, p := range a.Predicates {
				if per == 0 || i/per >= len(subs) {
					break
				}
				got[key{subs[i/per], p.Type}] = digests{p.Digest["sha256"], bundleSHA(p.Bundle)}
			}
		}
		if d := compare(rec, slices.Clone(subs), got); d != "" {
			e.violate("store: ledger entry %s differs from what the client received: %s", rec.LedgerID, d)
			continue
		}
		matched++
	}
	q := store.AttestationQuery{PageSize: 1000}
	for {
		page, next, err := st.ListAttestations(ctx, q)
		if err != nil {
			return 0, 0, fmt.Errorf("store: listing the ledger: %w", err)
		}
		count += len(page)
		if next == "" {
			return matched, count, nil
		}
		q.PageToken = next
	}
}

// integrityCheck runs PRAGMA integrity_check and foreign_key_check on a
// SQLite file; "ok" when both pass.
func integrityCheck(ctx context.Context, path string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		return "", fmt.Errorf("integrity_check: opening %s: %w", path, err)
	}
	defer db.Close()
	var problems []string
	rows, err := db.QueryContext(ctx, "PRAGMA integrity_check")
	if err != nil {
		return "", fmt.Errorf("integrity_check: %w", err)
	}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			rows.Close()
			return "", fmt.Errorf("integrity_check: %w", err)
		}
		if s != "ok" {
			problems = append(problems, s)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return "", fmt.Errorf("integrity_check: %w", err)
	}
	fk, err := db.QueryContext(ctx, "PRAGMA foreign_key_check")
	if err != nil {
		return "", fmt.Errorf("foreign_key_check: %w", err)
	}
	n := 0
	for fk.Next() {
		n++
	}
	fk.Close()
	if err := fk.Err(); err != nil {
		return "", fmt.Errorf("foreign_key_check: %w", err)
	}
	if n > 0 {
		problems = append(problems, fmt.Sprintf("foreign_key_check: %d rows", n))
	}
	if len(problems) == 0 {
		return "ok", nil
	}
	return strings.Join(problems, "; "), nil
}

// integrityOfCopy copies the database with its WAL and shared-memory
// files as SIGKILL left them and checks the copy, so that the next start
// of vouchd recovers the original itself.
func integrityOfCopy(ctx context.Context, dbPath, tmp string) (string, error) {
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return "", fmt.Errorf("integrity_check copy: %w", err)
	}
	defer os.RemoveAll(tmp)
	dst := filepath.Join(tmp, filepath.Base(dbPath))
	for _, suffix := range []string{"", "-wal", "-shm"} {
		b, err := os.ReadFile(dbPath + suffix)
		if errors.Is(err, os.ErrNotExist) && suffix != "" {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("integrity_check copy: %w", err)
		}
		if err := os.WriteFile(dst+suffix, b, 0o644); err != nil {
			return "", fmt.Errorf("integrity_check copy: %w", err)
		}
	}
	return integrityCheck(ctx, dst)
}

// errorLines counts vouchd's JSON log lines at level ERROR.
func errorLines(path string) (int, string) {
	f, err := os.Open(path)
	if err != nil {
		return 0, ""
	}
	defer f.Close()
	n, first := 0, ""
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		var l struct {
			Level string `json:"level"`
		}
		if json.Unmarshal(sc.Bytes(), &l) == nil && l.Level == "ERROR" {
			n++
			if first == "" {
				first = sc.Text()
			}
		}
	}
	return n, first
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

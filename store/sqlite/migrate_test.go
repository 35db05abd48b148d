package sqlite

import (
	"context"
	"database/sql"
	"io/fs"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/vouchdev/vouch/store"
	"github.com/vouchdev/vouch/store/storetest"
)

// TestMigrateLedgerRuns: a ledger written by schema version 3 (secondary
// indexes on attestation_packages) is carried into version 4 as its first
// run, and entries appended after the upgrade are found with it.
func TestMigrateLedgerRuns(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "vouch.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	files, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil || len(files) < 4 {
		t.Fatalf("migrations = %v, %v", files, err)
	}
	sort.Strings(files)
	if _, err := db.Exec(`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	for i, f := range files[:3] {
		body, err := migrations.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(string(body)); err != nil {
			t.Fatalf("migration %s: %v", f, err)
		}
		if _, err := db.Exec(`INSERT INTO schema_migrations VALUES (?, 0)`, i+1); err != nil {
			t.Fatal(err)
		}
	}
	old := storetest.Attestation("old", storetest.Time(), "old-image", 3)
	if _, err := db.Exec(`INSERT INTO attestations (seq, id, created_at, builder, verdict, subjects) VALUES (1, 'old', ?, 'b', 'VERIFIED', '[]')`, storetest.Time().UnixMicro()); err != nil {
		t.Fatal(err)
	}
	for i, p := range old.Packages {
		if _, err := db.Exec(`INSERT INTO attestation_packages VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			i, p.Name, p.Version, p.Arch, p.Repository, p.Checksum.String(), p.DataHash, p.Verdict, p.IndexSHA256); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	s, err := Open(ctx, Config{Path: path, IndexBatch: 1000})
	if err != nil {
		t.Fatalf("Open(version 3 database) = %v", err)
	}
	defer s.Close()
	var runs int
	if err := s.rdb.QueryRow(`SELECT COUNT(*) FROM ledger_runs`).Scan(&runs); err != nil || runs != 1 {
		t.Fatalf("ledger runs after upgrade = %d, %v; want 1", runs, err)
	}
	if s.pending.Load() != 0 {
		t.Errorf("pending rows after upgrade = %d, want 0", s.pending.Load())
	}
	got, err := s.Attestation(ctx, "old")
	if err != nil || len(got.Packages) != 3 || !got.Packages[2].Checksum.Equal(old.Packages[2].Checksum) {
		t.Fatalf("Attestation(old) after upgrade = %+v, %v", got.Packages, err)
	}
	// A new entry sharing a package: pending, not in a run.
	newer := storetest.Attestation("new", storetest.Time().Add(time.Hour), "new-image", 2)
	newer.Packages[0] = old.Packages[0]
	if _, err := s.AppendAttestation(ctx, newer); err != nil {
		t.Fatal(err)
	}
	p := old.Packages[0]
	for _, q := range []store.AttestationQuery{
		{Checksum: p.Checksum},
		{PackageName: p.Name, PackageVersion: p.Version},
		{PackageName: p.Name},
	} {
		list, _, err := s.ListAttestations(ctx, q)
		if err != nil {
			t.Fatalf("ListAttestations(%+v) = %v", q, err)
		}
		var ids []string
		for _, a := range list {
			ids = append(ids, a.ID)
		}
		sort.Strings(ids)
		if len(ids) != 2 || ids[0] != "new" || ids[1] != "old" {
			t.Errorf("ListAttestations(%+v) = %v, want [new old]", q, ids)
		}
	}
}

package sqlite

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/vouchdev/vouch/store"
	"github.com/vouchdev/vouch/store/storetest"
)

// envRunCrash, in a child process, names the database of runCrashChild.
const envRunCrash = "VOUCH_SQLITE_RUN_CRASH_DB"

const runCrashMarker = "IN LEDGER RUN"

// runCrashChild appends an entry with IndexBatch 1, so that the append
// goes on to write a ledger run, and blocks inside that run's transaction
// until killed.
func runCrashChild(path string) error {
	ctx := context.Background()
	s, err := Open(ctx, Config{Path: path, IndexBatch: 1, BeforeCommit: func(op string) {
		if op == "ledger_run" {
			fmt.Println(runCrashMarker)
			_ = os.Stdout.Sync()
			time.Sleep(time.Hour)
		}
	}})
	if err != nil {
		return err
	}
	_, err = s.AppendAttestation(ctx, storetest.Attestation("killed-run", storetest.Time(), "killed-run", 20))
	return fmt.Errorf("append returned (%v) instead of blocking in the run", err)
}

// TestCrashInLedgerRun kills a process inside a ledger run's transaction:
// the entry it had appended is intact and found by package queries (as a
// pending row), no run is left, and the next append writes one.
func TestCrashInLedgerRun(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vouch.db")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envRunCrash+"="+path)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	reached := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		reached <- sc.Scan() && sc.Text() == runCrashMarker
	}()
	select {
	case ok := <-reached:
		if !ok {
			t.Fatal("child ended before the ledger run")
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("child did not reach the ledger run within 2 minutes")
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var exit *exec.ExitError
	if err := cmd.Wait(); !errors.As(err, &exit) {
		t.Fatalf("child ended with %v, want killed", err)
	}

	ctx := context.Background()
	s, err := Open(ctx, Config{Path: path, IndexBatch: 1})
	if err != nil {
		t.Fatalf("reopening after the crash: %v", err)
	}
	defer s.Close()
	var runs int
	if err := s.rdb.QueryRow(`SELECT COUNT(*) FROM ledger_runs`).Scan(&runs); err != nil || runs != 0 {
		t.Fatalf("ledger runs after the crash = %d, %v; want 0", runs, err)
	}
	if s.pending.Load() != 20 {
		t.Errorf("pending rows after reopening = %d, want 20", s.pending.Load())
	}
	killed := storetest.Attestation("killed-run", storetest.Time(), "killed-run", 20)
	find := func(want int) {
		t.Helper()
		for _, q := range []store.AttestationQuery{{Checksum: killed.Packages[19].Checksum}, {PackageName: killed.Packages[0].Name}} {
			got, _, err := s.ListAttestations(ctx, q)
			if err != nil || len(got) != want {
				t.Errorf("ListAttestations(%+v) = %d entries, %v; want %d", q, len(got), err, want)
			}
		}
	}
	find(1)
	// The next append reaches IndexBatch and writes the run for both.
	next := storetest.Attestation("next", storetest.Time().Add(time.Minute), "killed-run", 20)
	if _, err := s.AppendAttestation(ctx, next); err != nil {
		t.Fatal(err)
	}
	if err := s.rdb.QueryRow(`SELECT COUNT(*) FROM ledger_runs`).Scan(&runs); err != nil || runs != 1 {
		t.Fatalf("ledger runs after the next append = %d, %v; want 1", runs, err)
	}
	find(2)
}

// For the TestMain of package sqlite_test, which runs the child.
var (
	EnvRunCrashForTest   = envRunCrash
	RunCrashChildForTest = runCrashChild
)

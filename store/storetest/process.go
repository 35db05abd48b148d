package storetest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vouchdev/vouch/store"
)

// Reopen opens the store a target names (a store URL), calling
// beforeCommit (which may be nil) as the backend's BeforeCommit hook.
type Reopen func(ctx context.Context, target string, beforeCommit func(op string)) (store.Store, error)

// Environment of a child process started by Crash or TwoProcessRefresh.
const (
	envRole   = "VOUCH_STORETEST_CHILD"
	envTarget = "VOUCH_STORETEST_TARGET"
	envArg    = "VOUCH_STORETEST_ARG"
	envStart  = "VOUCH_STORETEST_START"
	envURL    = "VOUCH_STORETEST_URL"
)

// Markers a child prints on its stdout.
const (
	inTxMarker   = "STORETEST IN TX"
	resultMarker = "STORETEST RESULT"
)

// ChildMain MUST be called first thing in the TestMain of a backend's tests
// that use Crash or TwoProcessRefresh. In a child process started by them it
// plays the child's role and exits; otherwise it returns at once.
func ChildMain(reopen Reopen) {
	role := os.Getenv(envRole)
	if role == "" {
		return
	}
	if err := runChild(role, reopen); err != nil {
		fmt.Fprintf(os.Stderr, "storetest child %s: %v\n", role, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// Crash data: a base snapshot, and the big diff a child is killed writing.
const (
	crashBase  = 2000
	crashExtra = 5000
	crashSeed  = 77
)

func crashBaseSnapshot() (store.Snapshot, []store.Entry) {
	base := Entries(crashBase, crashSeed)
	return NewSnapshot("wolfi", "x86_64", 0, len(base), []byte("crash base index"), t0), base
}

func crashNextSnapshot(parent int64, base []store.Entry) (store.Snapshot, store.Diff) {
	_, d := Change(base, 0.5, crashSeed+1)
	for i := range crashExtra {
		d.Added = append(d.Added, store.Entry{Name: fmt.Sprintf("extra-%05d", i), Version: "1-r0", Checksum: Checksum(fmt.Sprint("extra", i))})
	}
	return NewSnapshot("wolfi", "x86_64", parent, crashBase+crashExtra, []byte("crash next index"), t0.Add(time.Hour)), d
}

const crashLedgerID = "01CRASHTEST000000000000000"

func crashAttestation() store.Attestation { return Attestation(crashLedgerID, t0, "crash", 50) }

func runChild(role string, reopen Reopen) error {
	ctx := context.Background()
	target := os.Getenv(envTarget)
	switch role {
	case "crash-snapshot", "crash-ledger":
		hookOp := os.Getenv(envArg)
		st, err := reopen(ctx, target, func(op string) {
			if op != hookOp {
				return
			}
			// Inside the transaction: tell the parent, then wait for SIGKILL.
			fmt.Fprintln(os.Stdout, inTxMarker)
			_ = os.Stdout.Sync()
			time.Sleep(time.Hour)
		})
		if err != nil {
			return err
		}
		if role == "crash-ledger" {
			_, err = st.AppendAttestation(ctx, crashAttestation())
			return fmt.Errorf("append returned (%v) instead of blocking in the hook", err)
		}
		parent, err := st.LatestSnapshotID(ctx, "wolfi", "x86_64")
		if err != nil {
			return err
		}
		_, base := crashBaseSnapshot()
		next, d := crashNextSnapshot(parent, base)
		_, err = st.SaveSnapshot(ctx, next, d)
		return fmt.Errorf("save returned (%v) instead of blocking in the hook", err)
	case "refresh":
		return refreshChild(ctx, target, reopen)
	}
	return fmt.Errorf("unknown role %q", role)
}

// startChild starts the test binary as a child in role.
func startChild(t *testing.T, role, target string, env ...string) (*exec.Cmd, io.Reader) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envRole+"="+role, envTarget+"="+target)
	cmd.Env = append(cmd.Env, env...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("child stdout: %v", err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting child: %v", err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd, out
}

// Crash kills child processes with SIGKILL while they are inside a write
// transaction — half-way through a snapshot diff, just before the commit of
// a snapshot, and just before the commit of a ledger entry — then reopens
// the store and checks that nothing of those transactions is visible and
// that the same writes then succeed. target is a store URL of an empty
// store; the backend's TestMain MUST call ChildMain.
func Crash(t *testing.T, target string, reopen Reopen) {
	ctx := ctxFor(t)
	st, err := reopen(ctx, target, nil)
	if err != nil {
		t.Fatalf("opening store: %v", err)
	}
	baseSnap, base := crashBaseSnapshot()
	id1, err := st.SaveSnapshot(ctx, baseSnap, store.Diff{Added: base})
	if err != nil {
		t.Fatalf("saving base snapshot: %v", err)
	}
	st.Close()
	next, d := crashNextSnapshot(id1, base)

	killInTx := func(t *testing.T, role, op string) {
		t.Helper()
		cmd, out := startChild(t, role, target, envArg+"="+op)
		lines := make(chan string)
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		select {
		case l, ok := <-lines:
			if !ok || l != inTxMarker {
				_ = cmd.Wait()
				t.Fatalf("child ended or said %q before entering the transaction", l)
			}
		case <-time.After(2 * time.Minute):
			t.Fatal("child did not reach the transaction within 2 minutes")
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatalf("SIGKILL: %v", err)
		}
		err := cmd.Wait()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("child ended with %v, want killed by SIGKILL", err)
		}
	}
	checkNoSnapshot := func(t *testing.T) {
		t.Helper()
		st, err := reopen(ctx, target, nil)
		if err != nil {
			t.Fatalf("reopening after crash: %v", err)
		}
		defer st.Close()
		latest, err := st.LatestSnapshot(ctx, "wolfi", "x86_64")
		if err != nil || latest.ID != id1 || string(latest.Raw) != string(baseSnap.Raw) || latest.EntryCount != crashBase {
			t.Errorf("after crash LatestSnapshot = id %d count %d raw %q, %v; want the base snapshot %d", latest.ID, latest.EntryCount, latest.Raw, err, id1)
		}
		if got, err := st.SnapshotsBySHA256(ctx, "wolfi", "x86_64", next.SHA256); err != nil || len(got) != 0 {
			t.Errorf("after crash the killed snapshot is visible: %+v, %v", got, err)
		}
		seen, err := st.SeenEntries(ctx, "wolfi", "x86_64")
		if err != nil || len(seen) != crashBase {
			t.Fatalf("after crash SeenEntries = %d, %v; want %d", len(seen), err, crashBase)
		}
		for _, r := range seen {
			if !r.Current() || r.FirstSnapshot != id1 {
				t.Fatalf("after crash entry %s %s: first %d left %d; want only the base snapshot's entries, all current", r.Name, r.Version, r.FirstSnapshot, r.LeftSnapshot)
			}
		}
		for _, e := range []store.Entry{d.Added[0], d.Added[len(d.Added)-1]} {
			if got, err := st.EntriesByChecksum(ctx, e.Checksum); err != nil || len(got) != 0 {
				t.Errorf("after crash added entry %s is visible: %+v, %v", e.Name, got, err)
			}
		}
	}
	checkNoLedgerEntry := func(t *testing.T) {
		t.Helper()
		st, err := reopen(ctx, target, nil)
		if err != nil {
			t.Fatalf("reopening after crash: %v", err)
		}
		defer st.Close()
		_, err = st.Attestation(ctx, crashLedgerID)
		wantErr(t, "Attestation after crash", err, store.ErrNotFound)
		a := crashAttestation()
		for _, q := range []store.AttestationQuery{
			{PackageName: a.Packages[0].Name},
			{Checksum: a.Packages[49].Checksum},
			{SubjectDigest: "sha256:" + a.Subjects[0].Digest["sha256"]},
		} {
			if got, _, err := st.ListAttestations(ctx, q); err != nil || len(got) != 0 {
				t.Errorf("after crash ListAttestations(%+v) = %d entries, %v; want none", q, len(got), err)
			}
		}
	}

	t.Run("SnapshotMidDiff", func(t *testing.T) {
		killInTx(t, "crash-snapshot", "save_snapshot.diff")
		checkNoSnapshot(t)
	})
	t.Run("SnapshotBeforeCommit", func(t *testing.T) {
		killInTx(t, "crash-snapshot", "save_snapshot")
		checkNoSnapshot(t)
	})
	t.Run("LedgerBeforeCommit", func(t *testing.T) {
		killInTx(t, "crash-ledger", "append_attestation")
		checkNoLedgerEntry(t)
	})
	t.Run("WritesSucceedAfterCrash", func(t *testing.T) {
		st, err := reopen(ctx, target, nil)
		if err != nil {
			t.Fatalf("reopening: %v", err)
		}
		defer st.Close()
		id2, err := st.SaveSnapshot(ctx, next, d)
		if err != nil {
			t.Fatalf("SaveSnapshot of the killed diff = %v", err)
		}
		seen, err := st.SeenEntries(ctx, "wolfi", "x86_64")
		if err != nil || len(seen) != crashBase+len(d.Added) {
			t.Errorf("SeenEntries = %d, %v; want %d", len(seen), err, crashBase+len(d.Added))
		}
		if id, err := st.LatestSnapshotID(ctx, "wolfi", "x86_64"); err != nil || id != id2 {
			t.Errorf("LatestSnapshotID = %d, %v; want %d", id, err, id2)
		}
		if _, err := st.AppendAttestation(ctx, crashAttestation()); err != nil {
			t.Fatalf("AppendAttestation of the killed entry = %v", err)
		}
		got, err := st.Attestation(ctx, crashLedgerID)
		if err != nil || len(got.Packages) != 50 {
			t.Errorf("Attestation = %d packages, %v; want 50", len(got.Packages), err)
		}
	})
}

// refreshChild is one replica refreshing wolfi/x86_64: whoever gets the
// refresh lock fetches (unless a snapshot exists by then) and saves; the
// other waits for the snapshot to appear. Both print what they serve.
func refreshChild(ctx context.Context, target string, reopen Reopen) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	st, err := reopen(ctx, target, nil)
	if err != nil {
		return err
	}
	defer st.Close()
	watch, err := st.WatchSnapshots(ctx)
	if err != nil {
		return err
	}
	start, err := strconv.ParseInt(os.Getenv(envStart), 10, 64)
	if err != nil {
		return err
	}
	time.Sleep(time.Until(time.Unix(0, start)))

	fetched, via := false, "lock"
	unlock, ok, err := st.TryLockRefresh(ctx, "wolfi", "x86_64")
	if err != nil {
		return err
	}
	if ok {
		if _, err := st.LatestSnapshotID(ctx, "wolfi", "x86_64"); errors.Is(err, store.ErrNotFound) {
			raw, err := fetch(ctx, os.Getenv(envURL))
			if err != nil {
				unlock()
				return err
			}
			entries := Entries(100, 5)
			if _, err := st.SaveSnapshot(ctx, NewSnapshot("wolfi", "x86_64", 0, len(entries), raw, time.Now()), store.Diff{Added: entries}); err != nil {
				unlock()
				return err
			}
			fetched = true
		} else if err != nil {
			unlock()
			return err
		}
		unlock()
	} else {
		// Another replica refreshes: wait for its snapshot, by notice or
		// by polling.
		for {
			if _, err := st.LatestSnapshotID(ctx, "wolfi", "x86_64"); err == nil {
				break
			} else if !errors.Is(err, store.ErrNotFound) {
				return err
			}
			select {
			case <-watch:
				via = "notify"
			case <-time.After(200 * time.Millisecond):
				via = "poll"
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	sn, err := st.LatestSnapshot(ctx, "wolfi", "x86_64")
	if err != nil {
		return err
	}
	fmt.Printf("%s id=%d sha256=%s fetched=%v via=%s\n", resultMarker, sn.ID, SHA256(sn.Raw), fetched, via)
	return nil
}

func fetch(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch: %s", resp.Status)
	}
	return io.ReadAll(resp.Body)
}

// TwoProcessRefresh starts two child processes that refresh the same
// repository at the same moment against one store, through an HTTP server
// that counts fetches and answers slowly. Exactly one fetch must happen and
// both must end up serving the snapshot it produced, read from the store.
// The store MUST share refresh locks between processes (PostgreSQL); target
// is a store URL of an empty store; the backend's TestMain MUST call
// ChildMain.
func TwoProcessRefresh(t *testing.T, target string, reopen Reopen) {
	var fetches atomic.Int32
	body := []byte(fmt.Sprintf("signed index fetched by one replica at %d", time.Now().UnixNano()))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		time.Sleep(500 * time.Millisecond) // the other replica tries meanwhile
		_, _ = w.Write(body)
	}))
	defer srv.Close()

	start := time.Now().Add(3 * time.Second).UnixNano()
	type result struct {
		line string
		err  error
	}
	results := make(chan result, 2)
	for range 2 {
		cmd, out := startChild(t, "refresh", target, envStart+"="+strconv.FormatInt(start, 10), envURL+"="+srv.URL)
		go func() {
			b, _ := io.ReadAll(out)
			results <- result{strings.TrimSpace(string(b)), cmd.Wait()}
		}()
	}
	var lines []string
	for range 2 {
		select {
		case r := <-results:
			if r.err != nil {
				t.Fatalf("refresh child failed: %v (output %q)", r.err, r.line)
			}
			lines = append(lines, r.line)
		case <-time.After(3 * time.Minute):
			t.Fatal("refresh children did not finish within 3 minutes")
		}
	}
	if n := fetches.Load(); n != 1 {
		t.Errorf("%d fetches, want exactly 1", n)
	}
	st, err := reopen(ctxFor(t), target, nil)
	if err != nil {
		t.Fatalf("reopening: %v", err)
	}
	defer st.Close()
	sn, err := st.LatestSnapshot(ctxFor(t), "wolfi", "x86_64")
	if err != nil {
		t.Fatalf("LatestSnapshot = %v", err)
	}
	var fetchedBy int
	for _, l := range lines {
		t.Logf("child: %s", l)
		want := fmt.Sprintf("%s id=%d sha256=%s ", resultMarker, sn.ID, SHA256(body))
		if !strings.HasPrefix(l, want) {
			t.Errorf("child served %q, want prefix %q", l, want)
		}
		if strings.Contains(l, "fetched=true") {
			fetchedBy++
		}
	}
	if fetchedBy != 1 {
		t.Errorf("%d children say they fetched, want 1", fetchedBy)
	}
}

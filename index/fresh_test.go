package index

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/vouchdev/vouch/store"
)

// TestFreshness walks fresh → stale → fresh with an injected clock.
func TestFreshness(t *testing.T) {
	ctx := context.Background()
	key := testKey(t, "test.rsa.pub")
	srv := newServer(t, false)
	clk := newClock()
	c := newCache(t, testConfig(openStore(t, ""), clk, key.Keyring(), srv.URL)) // MaxAge 1h
	v1 := signedIndex(t, key, testArch, "v1", pkgsV1)
	srv.serve(v1)
	if r := refresh(t, c); r.Outcome != Updated {
		t.Fatal(r)
	}
	loaded := clk.Now()
	check := func(step string, wantOut Outcome, wantFresh Freshness) {
		t.Helper()
		l := c.Lookup(ctx, "test", testArch, "foo", "1.0-r0")
		if l.Outcome != wantOut {
			t.Errorf("%s: Lookup = %v, want %v", step, l.Outcome, wantOut)
		}
		if wantOut == Stale && !l.Checksum.IsZero() {
			t.Errorf("%s: a stale lookup carries checksum %s", step, l.Checksum)
		}
		st := c.Status(ctx, "test")[0]
		if st.Freshness != wantFresh {
			t.Errorf("%s: Status.Freshness = %v, want %v", step, st.Freshness, wantFresh)
		}
		if !st.StaleAfter.Equal(st.LastSuccess.Add(time.Hour)) {
			t.Errorf("%s: StaleAfter %v, LastSuccess %v", step, st.StaleAfter, st.LastSuccess)
		}
	}
	check("just loaded", Current, Fresh)
	clk.Advance(time.Hour)
	check("exactly max_age", Current, Fresh)
	clk.Advance(time.Second)
	check("past max_age", Stale, StaleSnapshot)

	// Failing refreshes do not make it fresh again.
	srv.set(status(http.StatusInternalServerError))
	if r := refresh(t, c); r.Outcome != Failed {
		t.Fatal(r)
	}
	check("after a failed refresh", Stale, StaleSnapshot)
	if got := c.Status(ctx, "test")[0].LastSuccess; !got.Equal(loaded) {
		t.Errorf("LastSuccess = %v, want %v", got, loaded)
	}
	if !c.Ready() {
		t.Error("Ready() = false with a stale snapshot loaded")
	}

	// A 304 confirms it: fresh again, without a new snapshot.
	srv.serve(v1)
	if r := refresh(t, c); r.Outcome != NotModified {
		t.Fatal(r)
	}
	check("after a 304", Current, Fresh)
	if got := c.Status(ctx, "test")[0].LastSuccess; !got.Equal(clk.Now()) {
		t.Errorf("LastSuccess = %v, want %v", got, clk.Now())
	}
}

// TestRestartFromStore: a new process with the network unreachable serves
// the last good snapshot from the store at once, verified again.
func TestRestartFromStore(t *testing.T) {
	ctx := context.Background()
	key := testKey(t, "test.rsa.pub")
	dir := t.TempDir()
	srv := newServer(t, false)
	clk := newClock()
	v2 := signedIndex(t, key, testArch, "v2", pkgsV2)
	{
		st := openStore(t, dir)
		c := newCache(t, testConfig(st, clk, key.Keyring(), srv.URL))
		srv.serve(signedIndex(t, key, testArch, "v1", pkgsV1))
		refresh(t, c)
		clk.Advance(time.Minute)
		srv.serve(v2)
		if r := refresh(t, c); r.Outcome != Updated {
			t.Fatal(r)
		}
		st.Close()
	}
	srv.Close()
	confirmed := clk.Now()
	clk.Advance(10 * time.Minute)

	t.Run("network unreachable", func(t *testing.T) {
		st := openStore(t, dir)
		c := newCache(t, testConfig(st, clk, key.Keyring(), srv.URL))
		if !c.Ready() {
			t.Fatal("not Ready after a restart with a stored snapshot")
		}
		if c.parses.Load() != 1 {
			t.Errorf("%d parses at start, want 1 (the stored snapshot verified again)", c.parses.Load())
		}
		l := c.Lookup(ctx, "test", testArch, "qux", "3.0-r0")
		if l.Outcome != Current || l.Snapshot.SHA256 != hexSHA256(v2) || !l.Snapshot.ConfirmedAt.Equal(confirmed) {
			t.Errorf("Lookup = %+v, want Current from the stored snapshot", l)
		}
		if h := c.Lookup(ctx, "test", testArch, "foo", "1.0-r0"); h.Outcome != History {
			t.Errorf("Lookup of a left entry = %v, want History", h.Outcome)
		}
		if r := refresh(t, c); r.Outcome != Failed || !errors.Is(r.Err, ErrFetch) {
			t.Errorf("refresh = %+v, want Failed with ErrFetch", r)
		}
		if l := c.Lookup(ctx, "test", testArch, "qux", "3.0-r0"); l.Outcome != Current {
			t.Errorf("after the failed refresh Lookup = %v, want Current", l.Outcome)
		}
		clk.Advance(time.Hour)
		if l := c.Lookup(ctx, "test", testArch, "qux", "3.0-r0"); l.Outcome != Stale {
			t.Errorf("past max_age Lookup = %v, want Stale", l.Outcome)
		}
	})
	t.Run("key no longer pinned", func(t *testing.T) {
		st := openStore(t, dir)
		c := newCache(t, testConfig(st, clk, testKey(t, "other.rsa.pub").Keyring(), srv.URL))
		if c.Ready() {
			t.Fatal("Ready with a stored snapshot that no pinned key signed")
		}
		if got := c.Lookup(ctx, "test", testArch, "qux", "3.0-r0").Outcome; got != NoSnapshot {
			t.Errorf("Lookup = %v, want NoSnapshot", got)
		}
		if err := c.Status(ctx, "test")[0].LastError; !errors.Is(err, ErrVerify) {
			t.Errorf("Status.LastError = %v, want ErrVerify", err)
		}
	})
	t.Run("rollback checked against the store with nothing loaded", func(t *testing.T) {
		other := testKey(t, "other.rsa.pub")
		srv2 := newServer(t, false)
		st := openStore(t, dir)
		c := newCache(t, testConfig(st, clk, other.Keyring(), srv2.URL))
		// The repository moved to a new key, and serves foo 1.0-r0 again
		// after 1.1-r0 was current.
		srv2.serve(signedIndex(t, other, testArch, "v3", append([]pkg{{name: "foo", version: "1.0-r0"}}, pkgsV2[1:]...)))
		if r := refresh(t, c); r.Outcome != Refused || !errors.Is(r.Err, ErrRollback) {
			t.Errorf("refresh = %v, %v; want Refused with ErrRollback", r.Outcome, r.Err)
		}
		// A proper successor is taken.
		srv2.serve(signedIndex(t, other, testArch, "v4", append([]pkg{{name: "foo", version: "1.2-r0"}}, pkgsV2[1:]...)))
		if r := refresh(t, c); r.Outcome != Updated {
			t.Errorf("refresh = %v, %v; want Updated", r.Outcome, r.Err)
		}
	})
}

// TestReplicas: two caches sharing one store (as two replicas share a
// database): while one refreshes, the other waits and loads its snapshot
// instead of fetching; Run follows snapshots the other one saves.
func TestReplicas(t *testing.T) {
	ctx := context.Background()
	key := testKey(t, "test.rsa.pub")
	srv := newServer(t, false)
	st := openStore(t, "")
	clk := newClock()
	cfg := testConfig(st, clk, key.Keyring(), srv.URL)
	cfg.PollInterval = 50 * time.Millisecond
	a, b := newCache(t, cfg), newCache(t, cfg)

	v1 := signedIndex(t, key, testArch, "v1", pkgsV1)
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	srv.set(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		<-release
		_, _ = w.Write(v1)
	})
	var wg sync.WaitGroup
	var ra, rb RefreshResult
	wg.Go(func() { ra = refresh(t, a) })
	<-started // a holds the refresh lock and is fetching
	wg.Go(func() { rb = refresh(t, b) })
	time.Sleep(100 * time.Millisecond)
	close(release)
	wg.Wait()
	if ra.Outcome != Updated || rb.Outcome != LoadedFromStore {
		t.Fatalf("outcomes %v and %v, want Updated and LoadedFromStore (errors %v, %v)", ra.Outcome, rb.Outcome, ra.Err, rb.Err)
	}
	if n := srv.count(); n != 1 {
		t.Errorf("%d fetches, want 1", n)
	}
	if l := b.Lookup(ctx, "test", testArch, "foo", "1.0-r0"); l.Outcome != Current || l.Snapshot.SHA256 != hexSHA256(v1) {
		t.Errorf("replica b Lookup = %+v", l)
	}

	// b follows what a saves.
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	cfgRun := cfg
	_ = cfgRun
	go func() { done <- b.Run(runCtx) }()
	v2 := signedIndex(t, key, testArch, "v2", pkgsV2)
	srv.serve(v2)
	clk.Advance(time.Minute)
	if r := refresh(t, a); r.Outcome != Updated {
		t.Fatal(r)
	}
	deadline := time.Now().Add(5 * time.Second)
	for b.Lookup(ctx, "test", testArch, "qux", "3.0-r0").Outcome != Current {
		if time.Now().After(deadline) {
			t.Fatal("replica b did not load the snapshot a saved")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A confirmation (304) by a reaches b too.
	clk.Advance(50 * time.Minute)
	if r := refresh(t, a); r.Outcome != NotModified {
		t.Fatal(r)
	}
	clk.Advance(20 * time.Minute) // past max_age of the first confirmation
	for b.Lookup(ctx, "test", testArch, "qux", "3.0-r0").Outcome != Current {
		if time.Now().After(deadline) {
			t.Fatal("replica b did not adopt the confirmation a recorded")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
}

// TestRunRefreshes: Run refreshes on its own, every Refresh interval.
func TestRunRefreshes(t *testing.T) {
	key := testKey(t, "test.rsa.pub")
	srv := newServer(t, false)
	cfg := testConfig(openStore(t, ""), newClock(), key.Keyring(), srv.URL)
	cfg.Repositories[0].Refresh = 30 * time.Millisecond
	c := newCache(t, cfg)
	srv.serve(signedIndex(t, key, testArch, "v1", pkgsV1))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	for srv.count() < 3 || !c.Ready() {
		if ctx.Err() != nil {
			t.Fatalf("Run made %d requests in 5s", srv.count())
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
	if ev := c.Status(context.Background(), "test")[0]; ev.LastOutcome != NotModified && ev.LastOutcome != Updated {
		t.Errorf("last outcome %v", ev.LastOutcome)
	}
}

var _ = store.EventRollback

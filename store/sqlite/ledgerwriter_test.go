package sqlite

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vouchdev/vouch/store"
	"github.com/vouchdev/vouch/store/storetest"
)

// heldWriter opens a store whose first ledger commit waits in BeforeCommit
// until release is called, so that appends made meanwhile queue behind it.
// commits counts ledger commits.
type heldWriter struct {
	s       *Store
	path    string
	commits atomic.Int32
	held    chan struct{} // closed when the first commit waits
	release func()
}

func newHeldWriter(t *testing.T) *heldWriter {
	t.Helper()
	h := &heldWriter{path: filepath.Join(t.TempDir(), "vouch.db"), held: make(chan struct{})}
	gate := make(chan struct{})
	var once sync.Once
	h.release = func() { once.Do(func() { close(gate) }) }
	t.Cleanup(h.release)
	s, err := Open(context.Background(), Config{Path: h.path, BeforeCommit: func(op string) {
		if op != "append_attestation" {
			return
		}
		if h.commits.Add(1) == 1 {
			close(h.held)
			<-gate
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	h.s = s
	return h
}

type appendResult struct {
	a   store.Attestation
	id  string
	err error
}

// start appends a from a new goroutine; its result arrives on the channel.
func (h *heldWriter) start(ctx context.Context, a store.Attestation) <-chan appendResult {
	out := make(chan appendResult, 1)
	go func() {
		id, err := h.s.AppendAttestation(ctx, a)
		out <- appendResult{a, id, err}
	}()
	return out
}

// queued waits long enough for appends started just before to be waiting
// on the writer (each has only its bundles to compress first).
func queued() { time.Sleep(300 * time.Millisecond) }

// TestLedgerGroupCommit: appends made while a commit runs are written
// together in the next one; an entry with a conflicting id fails alone and
// the others of its batch are stored whole; an entry whose caller gave up
// before it was written is not stored.
func TestLedgerGroupCommit(t *testing.T) {
	ctx := context.Background()
	h := newHeldWriter(t)
	first := h.start(ctx, storetest.Attestation("first", storetest.Time(), "first", 10))
	<-h.held

	// Every entry has 10 packages, like the held one, so that their
	// statements are prepared (an unprepared statement waits for the write
	// connection, which the held commit has).
	const n = 20
	var results []<-chan appendResult
	for i := range n {
		results = append(results, h.start(ctx, storetest.Attestation(fmt.Sprint("queued-", i), storetest.Time().Add(time.Duration(i)*time.Second), fmt.Sprint("queued-", i), 10)))
	}
	// The same id as the held entry: a conflict once that one commits.
	dup := h.start(ctx, storetest.Attestation("first", storetest.Time(), "dup", 10))
	gaveUp, cancel := context.WithCancel(ctx)
	abandoned := h.start(gaveUp, storetest.Attestation("abandoned", storetest.Time(), "abandoned", 10))
	queued()
	cancel()
	h.release()

	if r := <-first; r.err != nil || r.id != "first" {
		t.Fatalf("held append = %q, %v", r.id, r.err)
	}
	for _, c := range results {
		if r := <-c; r.err != nil || r.id != r.a.ID {
			t.Errorf("queued append %s = %q, %v", r.a.ID, r.id, r.err)
		}
	}
	if r := <-dup; !errors.Is(r.err, store.ErrConflict) {
		t.Errorf("append with an existing id = %q, %v; want ErrConflict", r.id, r.err)
	}
	if r := <-abandoned; !errors.Is(r.err, context.Canceled) {
		t.Errorf("append whose context ended while queued = %q, %v; want context.Canceled", r.id, r.err)
	}
	t.Logf("%d ledger commits", h.commits.Load())
	// 22 appends waited behind the held commit; they went in one more
	// commit (two if one goroutine was slow to queue), not 22.
	if c := h.commits.Load(); c > 3 {
		t.Errorf("%d ledger commits for 1 held and %d queued appends; want them batched", c, n+2)
	}

	for i := range n {
		want := storetest.Attestation(fmt.Sprint("queued-", i), storetest.Time().Add(time.Duration(i)*time.Second), fmt.Sprint("queued-", i), 10)
		got, err := h.s.Attestation(ctx, want.ID)
		if err != nil {
			t.Fatalf("Attestation(%s) = %v", want.ID, err)
		}
		if len(got.Packages) != len(want.Packages) || got.Subjects[0].Digest["sha256"] != want.Subjects[0].Digest["sha256"] {
			t.Errorf("entry %s read back with %d packages, subject %v", want.ID, len(got.Packages), got.Subjects)
		}
		byChecksum, _, err := h.s.ListAttestations(ctx, store.AttestationQuery{Checksum: want.Packages[len(want.Packages)-1].Checksum})
		if err != nil || len(byChecksum) != 1 || byChecksum[0].ID != want.ID {
			t.Errorf("entry %s by its last checksum: %d entries, %v", want.ID, len(byChecksum), err)
		}
	}
	if got, err := h.s.Attestation(ctx, "first"); err != nil || got.Subjects[0].Digest["sha256"] != storetest.SHA256([]byte("first")) {
		t.Errorf("entry first = %+v, %v; want the held entry, not the conflicting one", got.Subjects, err)
	}
	if _, err := h.s.Attestation(ctx, "abandoned"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("abandoned entry: %v, want ErrNotFound", err)
	}
	all, _, err := h.s.ListAttestations(ctx, store.AttestationQuery{PageSize: 1000})
	if err != nil || len(all) != n+1 {
		t.Errorf("ledger holds %d entries, %v; want %d", len(all), err, n+1)
	}
}

// TestLedgerCloseWhileQueued: appends waiting when the store closes either
// were written (and say so) or fail with ErrClosed and left nothing.
func TestLedgerCloseWhileQueued(t *testing.T) {
	ctx := context.Background()
	h := newHeldWriter(t)
	first := h.start(ctx, storetest.Attestation("first", storetest.Time(), "first", 3))
	<-h.held
	var results []<-chan appendResult
	for i := range 10 {
		results = append(results, h.start(ctx, storetest.Attestation(fmt.Sprint("q", i), storetest.Time(), fmt.Sprint("q", i), 3)))
	}
	queued()
	closed := make(chan error, 1)
	go func() { closed <- h.s.Close() }()
	queued()
	h.release()
	if err := <-closed; err != nil {
		t.Fatalf("Close = %v", err)
	}
	if r := <-first; r.err != nil {
		t.Fatalf("held append = %v", r.err)
	}
	written := map[string]bool{"first": true}
	for _, c := range results {
		r := <-c
		switch {
		case r.err == nil:
			written[r.a.ID] = true
		case !errors.Is(r.err, store.ErrClosed):
			t.Errorf("append %s = %v; want success or ErrClosed", r.a.ID, r.err)
		}
	}
	if late, err := h.s.AppendAttestation(ctx, storetest.Attestation("late", storetest.Time(), "late", 1)); !errors.Is(err, store.ErrClosed) {
		t.Errorf("append after Close = %q, %v; want ErrClosed", late, err)
	}

	s, err := Open(ctx, Config{Path: h.path})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	all, _, err := s.ListAttestations(ctx, store.AttestationQuery{PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != len(written) {
		t.Errorf("reopened ledger holds %d entries; %d appends reported success", len(all), len(written))
	}
	for _, a := range all {
		if !written[a.ID] {
			t.Errorf("entry %s is stored but its append failed", a.ID)
		}
	}
}

// TestLedgerWriterPanic: a panic inside a ledger commit fails that batch's
// appends with an error, stores none of it, and leaves the store working.
func TestLedgerWriterPanic(t *testing.T) {
	ctx := context.Background()
	var armed atomic.Bool
	armed.Store(true)
	s, err := Open(ctx, Config{Path: filepath.Join(t.TempDir(), "vouch.db"), BeforeCommit: func(op string) {
		if op == "append_attestation" && armed.Swap(false) {
			panic("injected")
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.AppendAttestation(ctx, storetest.Attestation("boom", storetest.Time(), "boom", 5)); !errors.Is(err, errWriterPanic) {
		t.Fatalf("append whose commit panicked = %v; want errWriterPanic", err)
	}
	if _, err := s.Attestation(ctx, "boom"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("entry of the panicked commit: %v; want ErrNotFound", err)
	}
	// The write connection is free again: the next append and another
	// kind of write both go through.
	if id, err := s.AppendAttestation(ctx, storetest.Attestation("after", storetest.Time(), "after", 5)); err != nil || id != "after" {
		t.Fatalf("append after the panic = %q, %v", id, err)
	}
	if _, err := s.AppendEvent(ctx, store.Event{Kind: store.EventRefreshFailure, Repository: "wolfi", Arch: "x86_64", Time: storetest.Time()}); err != nil {
		t.Fatalf("AppendEvent after the panic = %v", err)
	}
}

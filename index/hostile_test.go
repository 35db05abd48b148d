package index

import (
	"context"
	"crypto/rand"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/vouchdev/vouch/apk"
	"github.com/vouchdev/vouch/internal/testrepo"
	"github.com/vouchdev/vouch/store"
)

// slowBody sends headers, then one byte every 20ms until the client
// gives up: an endless body.
func slowBody(w http.ResponseWriter, r *http.Request) {
	w.WriteHeader(http.StatusOK)
	for {
		if _, err := w.Write([]byte{0x1f}); err != nil {
			return
		}
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func slowHeaders(w http.ResponseWriter, r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-time.After(3 * time.Second):
	}
}

func eventsOf(t *testing.T, st store.Store, kind store.EventKind) []store.Event {
	t.Helper()
	evs, _, err := st.ListEvents(context.Background(), store.EventQuery{Repository: "test", Arch: testArch, Kind: kind})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// TestHostileCanonical serves a good history, then one hostile answer, and
// checks the outcome, the error, the event, and that the last good
// snapshot still serves.
func TestHostileCanonical(t *testing.T) {
	key := testKey(t, "test.rsa.pub")
	other := testKey(t, "other.rsa.pub")
	v1 := signedIndex(t, key, testArch, "v1", pkgsV1)
	v2 := signedIndex(t, key, testArch, "v2", pkgsV2)
	random := make([]byte, 64<<10)
	_, _ = rand.Read(random)
	evilFoo := append([]pkg{{name: "foo", version: "1.0-r0", salt: "evil"}}, pkgsV1[1:]...)
	evilLeft := append(append([]pkg(nil), pkgsV2...), pkg{name: "foo", version: "1.0-r0", salt: "evil"})
	// foo 1.1-r0 dropped, only 1.0-r0 offered: newly signed, so not byte-identical to v1.
	olderFoo := []pkg{{name: "foo", version: "1.0-r0"}, {name: "bar", version: "2.0-r0"}, {name: "baz", version: "0.1-r0"}, {name: "qux", version: "3.0-r0"}}
	for _, tc := range []struct {
		name      string
		history   [][]byte // served and loaded first; the last one must keep serving
		hostile   http.HandlerFunc
		mutate    func(*Config)
		wantOut   RefreshOutcome
		wantErr   []error
		wantEvent store.EventKind
	}{
		{name: "signed by a wrong key under the pinned name", hostile: body(buildIndex(t, key, testArch, "x", pkgsV2, testrepo.IdxWrongKey)),
			wantOut: Failed, wantErr: []error{ErrVerify, apk.ErrBadSignature}, wantEvent: store.EventRefreshFailure},
		{name: "signed by an unknown key", hostile: body(signedIndex(t, other, testArch, "x", pkgsV2)),
			wantOut: Failed, wantErr: []error{ErrVerify, apk.ErrUntrustedKey}, wantEvent: store.EventRefreshFailure},
		{name: "signed by another repository's key", hostile: body(signedIndex(t, other, testArch, "x", pkgsV2)),
			mutate: func(c *Config) {
				c.Repositories = append(c.Repositories, RepositoryConfig{
					Name: "other", URL: "https://other.example.org/os", Keys: other.Keyring(), Architectures: []string{testArch},
				})
			},
			wantOut: Failed, wantErr: []error{ErrVerify, apk.ErrUntrustedKey}, wantEvent: store.EventRefreshFailure},
		{name: "bit flip in the signed part", hostile: body(buildIndex(t, key, testArch, "x", pkgsV2, testrepo.IdxBitFlip)),
			wantOut: Failed, wantErr: []error{ErrVerify, apk.ErrSignature}, wantEvent: store.EventRefreshFailure},
		{name: "truncated file", hostile: body(buildIndex(t, key, testArch, "x", pkgsV2, testrepo.IdxTruncated)),
			wantOut: Failed, wantErr: []error{ErrVerify}, wantEvent: store.EventRefreshFailure},
		{name: "unsigned index", hostile: body(buildIndex(t, key, testArch, "x", pkgsV2, testrepo.IdxUnsigned)),
			wantOut: Failed, wantErr: []error{ErrVerify, apk.ErrNoSignature}, wantEvent: store.EventRefreshFailure},
		{name: "gzip bomb signed by the pinned key", hostile: body(buildIndex(t, key, testArch, "x", pkgsV2, testrepo.IdxGzipBomb)),
			wantOut: Failed, wantErr: []error{ErrVerify, ErrTooLarge, apk.ErrIndexTooLarge}, wantEvent: store.EventRefreshFailure},
		{name: "not an index at all", hostile: body(random),
			wantOut: Failed, wantErr: []error{ErrVerify}, wantEvent: store.EventRefreshFailure},
		{name: "body over the size limit", hostile: body(append(random, random...)),
			mutate:  func(c *Config) { c.MaxBodyBytes = 100 << 10 },
			wantOut: Failed, wantErr: []error{ErrTooLarge}, wantEvent: store.EventRefreshFailure},
		{name: "endless slow body", hostile: slowBody,
			mutate:  func(c *Config) { c.BodyTimeout = 300 * time.Millisecond },
			wantOut: Failed, wantErr: []error{ErrTimeout, ErrFetch}, wantEvent: store.EventRefreshFailure},
		{name: "no headers", hostile: slowHeaders,
			mutate:  func(c *Config) { c.HeaderTimeout = 200 * time.Millisecond },
			wantOut: Failed, wantErr: []error{ErrTimeout, ErrFetch}, wantEvent: store.EventRefreshFailure},
		{name: "HTTP 500", hostile: status(http.StatusInternalServerError),
			wantOut: Failed, wantErr: []error{ErrFetch}, wantEvent: store.EventRefreshFailure},
		{name: "HTTP 404", hostile: status(http.StatusNotFound),
			wantOut: Failed, wantErr: []error{ErrFetch}, wantEvent: store.EventRefreshFailure},
		{name: "replayed older index", history: [][]byte{v1, v2}, hostile: body(v1),
			wantOut: Refused, wantErr: []error{ErrRollback}, wantEvent: store.EventRollback},
		{name: "newest version dropped for an older one", history: [][]byte{v1, v2}, hostile: body(signedIndex(t, key, testArch, "v3", olderFoo)),
			wantOut: Refused, wantErr: []error{ErrRollback}, wantEvent: store.EventRollback},
		{name: "equivocating current entry", hostile: body(signedIndex(t, key, testArch, "v1", evilFoo)),
			wantOut: Refused, wantErr: []error{ErrEquivocation}, wantEvent: store.EventEquivocation},
		{name: "equivocating entry that left the index", history: [][]byte{v1, v2}, hostile: body(signedIndex(t, key, testArch, "v3", evilLeft)),
			wantOut: Refused, wantErr: []error{ErrEquivocation}, wantEvent: store.EventEquivocation},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			srv := newServer(t, false)
			st := openStore(t, "")
			clk := newClock()
			cfg := testConfig(st, clk, key.Keyring(), srv.URL+"/os")
			if tc.mutate != nil {
				tc.mutate(&cfg)
			}
			c := newCache(t, cfg)
			history := tc.history
			if history == nil {
				history = [][]byte{v1}
			}
			for _, h := range history {
				clk.Advance(time.Minute)
				srv.serve(h)
				if r := refresh(t, c); r.Outcome != Updated {
					t.Fatalf("loading the good history: %+v", r)
				}
			}
			good := history[len(history)-1]

			clk.Advance(time.Minute)
			srv.set(tc.hostile)
			r := refresh(t, c)
			if r.Outcome != tc.wantOut {
				t.Errorf("Outcome = %v, want %v (err %v)", r.Outcome, tc.wantOut, r.Err)
			}
			for _, want := range tc.wantErr {
				if !errors.Is(r.Err, want) {
					t.Errorf("Err = %v, want errors.Is %v", r.Err, want)
				}
			}
			if r.SHA256 != hexSHA256(good) {
				t.Errorf("serving %s after the refresh, want the last good %s", r.SHA256, hexSHA256(good))
			}
			l := c.Lookup(ctx, "test", testArch, "bar", "2.0-r0")
			if l.Outcome != Current || l.Snapshot.SHA256 != hexSHA256(good) {
				t.Errorf("Lookup = %v from %s, want Current from the last good snapshot", l.Outcome, l.Snapshot.SHA256)
			}
			evs := eventsOf(t, st, tc.wantEvent)
			if len(evs) != 1 {
				t.Fatalf("%d %s events, want 1: %+v", len(evs), tc.wantEvent, evs)
			}
			if tc.wantEvent == store.EventEquivocation {
				ev := evs[0]
				if ev.Name != "foo" || ev.Version != "1.0-r0" ||
					!ev.Checksum.Equal(pkg{name: "foo", version: "1.0-r0"}.checksum()) ||
					!ev.OtherChecksum.Equal(pkg{name: "foo", version: "1.0-r0", salt: "evil"}.checksum()) {
					t.Errorf("equivocation event = %+v, want foo 1.0-r0 with the old and the new checksum", ev)
				}
			}
			// The same hostile answer again records no second event.
			if r := refresh(t, c); r.Outcome != tc.wantOut {
				t.Errorf("second hostile refresh Outcome = %v, want %v", r.Outcome, tc.wantOut)
			}
			if n := len(eventsOf(t, st, tc.wantEvent)); n != 1 {
				t.Errorf("%d %s events after a repeat, want 1", n, tc.wantEvent)
			}
			st0 := c.Status(ctx, "test")[0]
			if st0.LastOutcome != tc.wantOut || st0.LastError == nil || st0.Snapshot.SHA256 != hexSHA256(good) {
				t.Errorf("Status = outcome %v, error %v, sha %s", st0.LastOutcome, st0.LastError, st0.Snapshot.SHA256)
			}
		})
	}
}

func body(b []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(b) }
}

func TestServerErrorsThenRecovery(t *testing.T) {
	key := testKey(t, "test.rsa.pub")
	v1 := signedIndex(t, key, testArch, "v1", pkgsV1)
	failing := func(n int) http.HandlerFunc {
		calls := 0
		return func(w http.ResponseWriter, r *http.Request) {
			calls++
			if calls <= n {
				http.Error(w, "busy", http.StatusInternalServerError)
				return
			}
			_, _ = w.Write(v1)
		}
	}
	t.Run("retries within one refresh", func(t *testing.T) {
		srv := newServer(t, false)
		cfg := testConfig(openStore(t, ""), newClock(), key.Keyring(), srv.URL)
		cfg.Retries = 3
		c := newCache(t, cfg)
		srv.set(failing(2))
		if r := refresh(t, c); r.Outcome != Updated || r.Err != nil {
			t.Fatalf("refresh = %+v, want Updated after retries", r)
		}
		if n := srv.count(); n != 3 {
			t.Errorf("%d requests, want 3 (two 500s, then the index)", n)
		}
	})
	t.Run("next refresh recovers", func(t *testing.T) {
		srv := newServer(t, false)
		st := openStore(t, "")
		c := newCache(t, testConfig(st, newClock(), key.Keyring(), srv.URL))
		srv.set(failing(1))
		if r := refresh(t, c); r.Outcome != Failed || !errors.Is(r.Err, ErrFetch) {
			t.Fatalf("first refresh = %+v, want Failed with ErrFetch", r)
		}
		if c.Ready() {
			t.Error("Ready after a failed first refresh")
		}
		if r := refresh(t, c); r.Outcome != Updated {
			t.Fatalf("second refresh = %+v, want Updated", r)
		}
		if !c.Ready() || c.Status(context.Background(), "test")[0].LastError != nil {
			t.Error("not ready, or an error left after recovery")
		}
	})
}

// TestMirrors: mirrors are tried in order after the canonical URL fails,
// and whatever they serve meets the same rules.
func TestMirrors(t *testing.T) {
	ctx := context.Background()
	key := testKey(t, "test.rsa.pub")
	v1 := signedIndex(t, key, testArch, "v1", pkgsV1)
	v2 := signedIndex(t, key, testArch, "v2", pkgsV2)
	v3 := signedIndex(t, key, testArch, "v3", append(append([]pkg(nil), pkgsV2...), pkg{name: "new", version: "1-r0"}))
	evil := signedIndex(t, key, testArch, "v2", append([]pkg{{name: "foo", version: "1.1-r0", salt: "evil"}}, pkgsV2[1:]...))

	canon, m1, m2 := newServer(t, false), newServer(t, false), newServer(t, false)
	st := openStore(t, "")
	clk := newClock()
	c := newCache(t, testConfig(st, clk, key.Keyring(), canon.URL+"/os", m1.URL+"/os", m2.URL+"/os"))
	canon.serve(v1)
	if r := refresh(t, c); r.Outcome != Updated {
		t.Fatal(r)
	}
	canon.serve(v2)
	if r := refresh(t, c); r.Outcome != Updated {
		t.Fatal(r)
	}
	if m1.count()+m2.count() != 0 {
		t.Fatal("mirrors asked although the canonical URL answered")
	}

	canon.set(status(http.StatusBadGateway))
	for _, tc := range []struct {
		name        string
		m1, m2      http.HandlerFunc
		wantOut     RefreshOutcome
		wantErr     error
		wantSHA     string
		wantSource  string
		wantMirror2 bool
	}{
		{name: "mirror replays an older validly signed index", m1: body(v1), m2: status(http.StatusNotFound),
			wantOut: Refused, wantErr: ErrRollback, wantSHA: hexSHA256(v2), wantMirror2: true},
		{name: "mirror serves a validly signed equivocating index", m1: body(evil), m2: status(http.StatusNotFound),
			wantOut: Refused, wantErr: ErrEquivocation, wantSHA: hexSHA256(v2), wantMirror2: true},
		{name: "first mirror down, second serves the current file", m1: status(http.StatusServiceUnavailable), m2: body(v2),
			wantOut: NotModified, wantSHA: hexSHA256(v2), wantMirror2: true},
		{name: "mirror serves a newer validly signed index", m1: body(v3), m2: body(v1),
			wantOut: Updated, wantSHA: hexSHA256(v3), wantSource: m1.URL + "/os/x86_64/APKINDEX.tar.gz"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk.Advance(time.Minute)
			m1.set(tc.m1)
			m2.set(tc.m2)
			before := m2.count()
			r := refresh(t, c)
			if r.Outcome != tc.wantOut || !errors.Is(r.Err, tc.wantErr) || (tc.wantErr == nil && r.Err != nil) {
				t.Errorf("refresh = %v, %v; want %v, %v", r.Outcome, r.Err, tc.wantOut, tc.wantErr)
			}
			if !errors.Is(r.Err, tc.wantErr) && tc.wantErr != nil {
				t.Errorf("Err = %v", r.Err)
			}
			if r.SHA256 != tc.wantSHA {
				t.Errorf("serving %s, want %s", r.SHA256, tc.wantSHA)
			}
			if asked := m2.count() > before; asked != tc.wantMirror2 {
				t.Errorf("second mirror asked = %v, want %v", asked, tc.wantMirror2)
			}
			l := c.Lookup(ctx, "test", testArch, "bar", "2.0-r0")
			if l.Outcome != Current || l.Snapshot.IndexURL != canon.URL+"/os/x86_64/APKINDEX.tar.gz" {
				t.Errorf("Lookup = %v with index URL %q, want Current naming the canonical URL", l.Outcome, l.Snapshot.IndexURL)
			}
			if tc.wantSource != "" {
				if got := c.Status(ctx, "test")[0].Source; got != tc.wantSource {
					t.Errorf("Status.Source = %q, want %q", got, tc.wantSource)
				}
			}
		})
	}
}

func TestAcceptEquivocation(t *testing.T) {
	ctx := context.Background()
	key := testKey(t, "test.rsa.pub")
	srv := newServer(t, false)
	st := openStore(t, "")
	c := newCache(t, testConfig(st, newClock(), key.Keyring(), srv.URL))
	srv.serve(signedIndex(t, key, testArch, "v1", pkgsV1))
	if r := refresh(t, c); r.Outcome != Updated {
		t.Fatal(r)
	}
	newFoo := pkg{name: "foo", version: "1.0-r0", salt: "rebuilt"}
	srv.serve(signedIndex(t, key, testArch, "v1", append([]pkg{newFoo}, pkgsV1[1:]...)))
	if r := refresh(t, c); r.Outcome != Refused || !errors.Is(r.Err, ErrEquivocation) {
		t.Fatalf("refresh = %+v, want Refused", r)
	}
	for _, tc := range []struct {
		name                 string
		repo, arch, pkg, ver string
		sum                  apk.Checksum
		reason, who          string
		wantErr              error
	}{
		{name: "unknown repository", repo: "nope", arch: testArch, pkg: "foo", ver: "1.0-r0", sum: newFoo.checksum(), reason: "r", who: "w", wantErr: ErrUnknownRepository},
		{name: "zero checksum", repo: "test", arch: testArch, pkg: "foo", ver: "1.0-r0", reason: "r", who: "w", wantErr: ErrInvalidArgument},
		{name: "no reason", repo: "test", arch: testArch, pkg: "foo", ver: "1.0-r0", sum: newFoo.checksum(), who: "w", wantErr: ErrInvalidArgument},
		{name: "no name", repo: "test", arch: testArch, ver: "1.0-r0", sum: newFoo.checksum(), reason: "r", who: "w", wantErr: ErrInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := c.AcceptEquivocation(ctx, tc.repo, tc.arch, tc.pkg, tc.ver, tc.sum, tc.reason, tc.who); !errors.Is(err, tc.wantErr) {
				t.Errorf("AcceptEquivocation = %v, want %v", err, tc.wantErr)
			}
		})
	}
	ev, err := c.AcceptEquivocation(ctx, "test", testArch, "foo", "1.0-r0", newFoo.checksum(), "upstream rebuilt foo after a toolchain bug", "alice")
	if err != nil {
		t.Fatal(err)
	}
	if ev.ID == 0 || ev.Kind != store.EventEquivocationAccepted || !ev.Checksum.Equal(pkgsV1[0].checksum()) || !ev.OtherChecksum.Equal(newFoo.checksum()) {
		t.Errorf("accepted event = %+v", ev)
	}
	if r := refresh(t, c); r.Outcome != Updated {
		t.Fatalf("refresh after acceptance = %+v, want Updated", r)
	}
	if l := c.Lookup(ctx, "test", testArch, "foo", "1.0-r0"); l.Outcome != Current || !l.Checksum.Equal(newFoo.checksum()) {
		t.Errorf("Lookup = %+v, want the accepted checksum", l)
	}
}

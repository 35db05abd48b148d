package index

import (
	"context"
	"crypto/sha1" //nolint:gosec // apk v2 identities are SHA-1.
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vouchdev/vouch/apk"
	"github.com/vouchdev/vouch/internal/testrepo"
	"github.com/vouchdev/vouch/store"
	_ "github.com/vouchdev/vouch/store/sqlite"
)

// testKey returns the process-wide 2048-bit test key of that name.
func testKey(tb testing.TB, name string) *testrepo.Key { return testrepo.MustKey(tb, name) }

// pkg is one index entry; salt changes its checksum (equivocation).
type pkg struct {
	name, version string
	salt          string
}

func (p pkg) checksum() apk.Checksum {
	return apk.SHA1Checksum(sha1.Sum([]byte(p.name + "\x00" + p.version + "\x00" + p.salt))) //nolint:gosec // test identity
}

func (p pkg) entry(arch string) apk.Entry {
	return apk.Entry{
		Checksum: p.checksum(), Name: p.name, Version: p.version, Arch: arch, Size: 1234, InstalledSize: 5678,
		Description: "test package " + p.name, License: "MIT", Origin: p.name, BuildTime: 1700000000,
		Depends: "so:libc.so.6",
	}
}

// buildIndex builds an index of pkgs for arch signed by k, with an
// optional deliberate defect.
func buildIndex(tb testing.TB, k *testrepo.Key, arch, desc string, pkgs []pkg, defect testrepo.IndexDefect) []byte {
	tb.Helper()
	ix := testrepo.Index{Description: desc, Signers: []testrepo.Signer{{Key: k}}, Defect: defect, BombSize: 8 << 20}
	for _, p := range pkgs {
		ix.Entries = append(ix.Entries, p.entry(arch))
	}
	b, err := ix.Build()
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// signedIndex builds a well-formed index of pkgs for arch signed by k.
func signedIndex(tb testing.TB, k *testrepo.Key, arch, desc string, pkgs []pkg) []byte {
	tb.Helper()
	return buildIndex(tb, k, arch, desc, pkgs, testrepo.IdxOK)
}

// clock is an injectable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// server is a test repository server whose answer can be changed.
type server struct {
	*httptest.Server
	mu       sync.Mutex
	handler  http.HandlerFunc
	requests int
	lastReq  *http.Request
}

// newServer starts a loopback server (TLS when tlsOn) answering with the
// current handler.
func newServer(tb testing.TB, tlsOn bool) *server {
	s := &server{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.requests++
		s.lastReq = r.Clone(context.Background())
		h := s.handler
		s.mu.Unlock()
		if h == nil {
			http.Error(w, "no index", http.StatusNotFound)
			return
		}
		h(w, r)
	})
	if tlsOn {
		s.Server = httptest.NewTLSServer(h)
	} else {
		s.Server = httptest.NewServer(h)
	}
	tb.Cleanup(s.Close)
	return s
}

func (s *server) set(h http.HandlerFunc) {
	s.mu.Lock()
	s.handler = h
	s.mu.Unlock()
}

func (s *server) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// serve answers every request for <arch>/APKINDEX.tar.gz with body, with
// an ETag and conditional-GET support.
func (s *server) serve(body []byte) {
	etag := fmt.Sprintf("%q", hexSHA256(body)[:16])
	s.set(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/APKINDEX.tar.gz") {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("ETag", etag)
		if r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("Content-Type", "application/gzip")
		_, _ = w.Write(body)
	})
}

func status(code int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { http.Error(w, http.StatusText(code), code) }
}

// openStore opens a SQLite store in dir (a fresh temp dir when "").
func openStore(tb testing.TB, dir string) store.Store {
	tb.Helper()
	if dir == "" {
		dir = tb.TempDir()
	}
	st, err := store.Open(context.Background(), "sqlite://"+filepath.Join(dir, "x.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	return st
}

const testArch = "x86_64"

// testConfig returns a config for one repository "test" at url (mirrors
// optional), trusting keys, with short timeouts and no retry backoff.
func testConfig(st store.Store, clk *clock, keys *apk.Keyring, url string, mirrors ...string) Config {
	return Config{
		Repositories: []RepositoryConfig{{
			Name: "test", URL: url, Mirrors: mirrors, Keys: keys, Architectures: []string{testArch},
			Refresh: time.Minute, MaxAge: time.Hour, History: 24 * time.Hour, MaxIndexBytes: 1 << 20,
		}},
		Store:          st,
		ConnectTimeout: 2 * time.Second,
		HeaderTimeout:  2 * time.Second,
		BodyTimeout:    2 * time.Second,
		Retries:        -1,
		RetryBackoff:   time.Millisecond,
		MaxBackoff:     5 * time.Millisecond,
		Clock:          clk.Now,
	}
}

func newCache(tb testing.TB, cfg Config) *Cache {
	tb.Helper()
	c, err := New(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// refresh refreshes the test arch and returns its single result.
func refresh(tb testing.TB, c *Cache) RefreshResult {
	tb.Helper()
	res, err := c.Refresh(context.Background(), "test", testArch)
	if err != nil {
		tb.Fatal(err)
	}
	if len(res) != 1 {
		tb.Fatalf("Refresh returned %d results, want 1", len(res))
	}
	return res[0]
}

var (
	pkgsV1 = []pkg{{name: "foo", version: "1.0-r0"}, {name: "bar", version: "2.0-r0"}, {name: "baz", version: "0.1-r0"}}
	// pkgsV2 upgrades foo (1.0-r0 leaves) and adds qux.
	pkgsV2 = []pkg{{name: "foo", version: "1.1-r0"}, {name: "bar", version: "2.0-r0"}, {name: "baz", version: "0.1-r0"}, {name: "qux", version: "3.0-r0"}}
)

// metricValue returns the value of the first sample of metric name that
// has label=value (counter, gauge or untyped), or -1 when none.
func metricValue(tb testing.TB, g prometheus.Gatherer, name, label, value string) float64 {
	tb.Helper()
	mfs, err := g.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			match := label == ""
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					match = true
				}
			}
			if !match {
				continue
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			case m.GetUntyped() != nil:
				return m.GetUntyped().GetValue()
			}
		}
	}
	return -1
}

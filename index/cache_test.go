package index

import (
	"context"
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vouchdev/vouch/store"
)

func TestRefreshLookupAndHistory(t *testing.T) {
	ctx := context.Background()
	key := testKey(t, "test.rsa.pub")
	srv := newServer(t, true)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	clk := newClock()
	st := openStore(t, "")
	cfg := testConfig(st, clk, key.Keyring(), srv.URL+"/os")
	cfg.Repositories[0].RootCAs = pool
	reg := prometheus.NewPedanticRegistry()
	cfg.Registerer = reg
	c := newCache(t, cfg)

	if c.Ready() {
		t.Fatal("Ready() = true before any snapshot")
	}
	if got := c.Lookup(ctx, "test", testArch, "foo", "1.0-r0").Outcome; got != NoSnapshot {
		t.Fatalf("Lookup before refresh = %v, want %v", got, NoSnapshot)
	}

	v1 := signedIndex(t, key, testArch, "v1", pkgsV1)
	srv.serve(v1)
	if r := refresh(t, c); r.Outcome != Updated || r.Err != nil || r.Entries != 3 || r.SHA256 != hexSHA256(v1) {
		t.Fatalf("first refresh = %+v, want Updated with 3 entries", r)
	}
	if !c.Ready() {
		t.Fatal("Ready() = false after a verified snapshot")
	}
	got := c.Lookup(ctx, "test", testArch, "foo", "1.0-r0")
	want := Lookup{
		Outcome: Current, Checksum: pkg{name: "foo", version: "1.0-r0"}.checksum(),
		Snapshot: SnapshotInfo{
			ID: got.Snapshot.ID, IndexURL: srv.URL + "/os/x86_64/APKINDEX.tar.gz", SHA256: hexSHA256(v1),
			Keys: []string{"test.rsa.pub"}, FetchedAt: clk.Now(), ConfirmedAt: clk.Now(),
		},
	}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreUnexported(Lookup{})); diff != "" {
		t.Errorf("Lookup current (-want +got):\n%s", diff)
	}
	if license, origin := got.LicenseOrigin(); license != "MIT" || origin != "foo" {
		t.Errorf("LicenseOrigin = %q, %q; want MIT, foo", license, origin)
	}
	if license, origin := c.Lookup(ctx, "test", testArch, "no-such", "1.0-r0").LicenseOrigin(); license != "" || origin != "" {
		t.Errorf("LicenseOrigin of a miss = %q, %q; want empty", license, origin)
	}

	// A conditional GET answered 304 confirms without parsing.
	parses := c.parses.Load()
	clk.Advance(10 * time.Minute)
	if r := refresh(t, c); r.Outcome != NotModified || r.Err != nil {
		t.Fatalf("second refresh = %+v, want NotModified", r)
	}
	if srv.lastReq.Header.Get("If-None-Match") == "" {
		t.Error("second request carried no If-None-Match")
	}
	if n := c.parses.Load() - parses; n != 0 {
		t.Errorf("a 304 parsed %d index(es), want 0", n)
	}
	if got := metricValue(t, reg, "vouch_index_fetches_total", "result", "not_modified"); got != 1 {
		t.Errorf("not_modified fetches = %v, want 1", got)
	}
	if got := c.Lookup(ctx, "test", testArch, "foo", "1.0-r0").Snapshot.ConfirmedAt; !got.Equal(clk.Now()) {
		t.Errorf("ConfirmedAt after 304 = %v, want %v", got, clk.Now())
	}

	// An upgrade: foo 1.0-r0 leaves the index and is answered from history.
	clk.Advance(time.Minute)
	v2 := signedIndex(t, key, testArch, "v2", pkgsV2)
	srv.serve(v2)
	if r := refresh(t, c); r.Outcome != Updated || r.Entries != 4 {
		t.Fatalf("third refresh = %+v, want Updated with 4 entries", r)
	}
	leftAt := clk.Now()
	h := c.Lookup(ctx, "test", testArch, "foo", "1.0-r0")
	if h.Outcome != History || !h.Checksum.Equal(pkg{name: "foo", version: "1.0-r0"}.checksum()) || !h.LeftAt.Equal(leftAt) || h.Expired {
		t.Errorf("Lookup left entry = %+v, want History, left at %v, not expired", h, leftAt)
	}
	if h.Snapshot.SHA256 != hexSHA256(v2) {
		t.Errorf("history decided by %s, want the current snapshot %s", h.Snapshot.SHA256, hexSHA256(v2))
	}
	if got := c.Lookup(ctx, "test", testArch, "nope", "1").Outcome; got != NotFound {
		t.Errorf("Lookup unknown package = %v, want %v", got, NotFound)
	}
	// Past the history window it is still History, but Expired; the index
	// is kept fresh meanwhile by 304s.
	for range 25 {
		clk.Advance(time.Hour - time.Minute)
		if r := refresh(t, c); r.Outcome != NotModified {
			t.Fatalf("keep-alive refresh = %+v", r)
		}
	}
	if h := c.Lookup(ctx, "test", testArch, "foo", "1.0-r0"); h.Outcome != History || !h.Expired {
		t.Errorf("Lookup after the history window = %+v, want History and Expired", h)
	}

	st0 := c.Status(ctx, "test")
	if len(st0) != 1 || st0[0].Freshness != Fresh || st0[0].Entries != 4 || st0[0].Description != "v2" || st0[0].LastError != nil {
		t.Errorf("Status = %+v", st0)
	}
	if got := metricValue(t, reg, "vouch_index_entries", "arch", testArch); got != 4 {
		t.Errorf("vouch_index_entries = %v, want 4", got)
	}
	if got := metricValue(t, reg, "vouch_index_fresh", "arch", testArch); got != 1 {
		t.Errorf("vouch_index_fresh = %v, want 1", got)
	}
}

func TestLookupUnknown(t *testing.T) {
	ctx := context.Background()
	key := testKey(t, "test.rsa.pub")
	c := newCache(t, testConfig(openStore(t, ""), newClock(), key.Keyring(), "https://example.org/os"))
	for _, tc := range []struct{ name, repo, arch string }{
		{name: "unknown repository", repo: "other", arch: testArch},
		{name: "unknown arch", repo: "test", arch: "riscv64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := c.Lookup(ctx, tc.repo, tc.arch, "foo", "1").Outcome; got != UnknownRepository {
				t.Errorf("Lookup = %v, want %v", got, UnknownRepository)
			}
			if _, err := c.Refresh(ctx, tc.repo, tc.arch); !errors.Is(err, ErrUnknownRepository) {
				t.Errorf("Refresh error = %v, want ErrUnknownRepository", err)
			}
		})
	}
}

func TestResolve(t *testing.T) {
	key := testKey(t, "test.rsa.pub")
	cfg := testConfig(openStore(t, ""), newClock(), key.Keyring(), "https://packages.example.org/os", "http://mirror.internal:8080/wolfi/")
	cfg.Repositories[0].Architectures = []string{"x86_64", "aarch64"}
	c := newCache(t, cfg)
	for _, tc := range []struct {
		name, url string
		wantOK    bool
	}{
		{name: "canonical", url: "https://packages.example.org/os", wantOK: true},
		{name: "trailing slash", url: "https://packages.example.org/os/", wantOK: true},
		{name: "arch suffix", url: "https://packages.example.org/os/x86_64", wantOK: true},
		{name: "arch suffix and slash", url: "https://packages.example.org/os/aarch64/", wantOK: true},
		{name: "host case and default port", url: "HTTPS://Packages.Example.org:443/os", wantOK: true},
		{name: "mirror", url: "http://mirror.internal:8080/wolfi", wantOK: true},
		{name: "mirror with arch", url: "http://mirror.internal:8080/wolfi/x86_64/", wantOK: true},
		{name: "unconfigured arch", url: "https://packages.example.org/os/riscv64"},
		{name: "other path", url: "https://packages.example.org/os2"},
		{name: "path case differs", url: "https://packages.example.org/OS"},
		{name: "other scheme", url: "http://packages.example.org/os"},
		{name: "deeper path", url: "https://packages.example.org/os/x86_64/extra"},
		{name: "query", url: "https://packages.example.org/os?x=1"},
		{name: "user info", url: "https://u@packages.example.org/os"},
		{name: "garbage", url: "::"},
		{name: "empty", url: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name, ok := c.Resolve(tc.url)
			if ok != tc.wantOK || (ok && name != "test") {
				t.Errorf("Resolve(%q) = %q, %v; want ok=%v", tc.url, name, ok, tc.wantOK)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	key := testKey(t, "test.rsa.pub")
	st := openStore(t, "")
	good := func() Config { return testConfig(st, newClock(), key.Keyring(), "https://example.org/os") }
	for _, tc := range []struct {
		name    string
		mutate  func(*Config)
		wantErr error
	}{
		{name: "ok", mutate: func(*Config) {}},
		{name: "no store", mutate: func(c *Config) { c.Store = nil }, wantErr: ErrInvalidConfig},
		{name: "no repositories", mutate: func(c *Config) { c.Repositories = nil }, wantErr: ErrInvalidConfig},
		{name: "no keys", mutate: func(c *Config) { c.Repositories[0].Keys = nil }, wantErr: ErrInvalidConfig},
		{name: "bad scheme", mutate: func(c *Config) { c.Repositories[0].URL = "ftp://example.org/os" }, wantErr: ErrInvalidConfig},
		{name: "relative file URL", mutate: func(c *Config) { c.Repositories[0].URL = "file:repo" }, wantErr: ErrInvalidConfig},
		{name: "no architectures", mutate: func(c *Config) { c.Repositories[0].Architectures = nil }, wantErr: ErrInvalidConfig},
		{name: "arch with slash", mutate: func(c *Config) { c.Repositories[0].Architectures = []string{"x86/64"} }, wantErr: ErrInvalidConfig},
		{name: "duplicate name", mutate: func(c *Config) {
			r := c.Repositories[0]
			r.URL = "https://other.example.org/os"
			c.Repositories = append(c.Repositories, r)
		}, wantErr: ErrInvalidConfig},
		{name: "URL shared by two repositories", mutate: func(c *Config) {
			r := c.Repositories[0]
			r.Name = "other"
			r.URL = "https://example.org/os/"
			c.Repositories = append(c.Repositories, r)
		}, wantErr: ErrInvalidConfig},
		{name: "bad CA bundle", mutate: func(c *Config) { c.Repositories[0].CABundlePEM = []byte("nope") }, wantErr: ErrInvalidConfig},
		{name: "negative timeout", mutate: func(c *Config) { c.BodyTimeout = -time.Second }, wantErr: ErrInvalidConfig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good()
			tc.mutate(&cfg)
			err := cfg.Validate()
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Errorf("Validate() = %v, want %v", err, tc.wantErr)
			}
		})
	}
	cfg := good()
	cfg.Repositories[0].Refresh, cfg.Repositories[0].MaxAge, cfg.Repositories[0].History = 0, 0, 0
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	r := cfg.Repositories[0]
	if r.Refresh != DefaultRefresh || r.MaxAge != DefaultMaxAge || r.History != DefaultHistory || r.Distro != "test" {
		t.Errorf("defaults not applied: %+v", r)
	}
}

var _ = store.ErrNotFound

// Package daemon assembles vouchd from its configuration — store, index cache, signer, gRPC server, metrics listener — for cmd/vouchd, the demo and end-to-end tests.
package daemon

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/vouchdev/vouch/apk"
	"github.com/vouchdev/vouch/attest"
	"github.com/vouchdev/vouch/index"
	"github.com/vouchdev/vouch/internal/config"
	"github.com/vouchdev/vouch/server"
	"github.com/vouchdev/vouch/store"

	// Store backends selectable by the store: URL.
	_ "github.com/vouchdev/vouch/store/postgres"
	_ "github.com/vouchdev/vouch/store/sqlite"
)

// Version is vouchd's version as recorded in attestations.
const Version = "0.1.0"

// DrainTimeout bounds a graceful stop before in-flight RPCs are cut.
const DrainTimeout = 30 * time.Second

// Options are the parts of a daemon that are not in the configuration file.
type Options struct {
	// Logger for the server; default: from cfg.Log to stderr.
	Logger *slog.Logger
	// Clock for the index cache and the server; default time.Now.
	Clock func() time.Time
	// IndexHTTPClient replaces the index cache's HTTP client (tests).
	IndexHTTPClient *http.Client
	// Registry receives metrics; default a new registry with Go and process
	// collectors.
	Registry *prometheus.Registry
	// NoRefreshLoop skips the background refresh loop (tests that drive
	// refreshes themselves).
	NoRefreshLoop bool
}

// Daemon is a running vouchd.
type Daemon struct {
	// Addr is the gRPC listener's address.
	Addr net.Addr
	// MetricsAddr is the /metrics listener's address (nil when disabled).
	MetricsAddr net.Addr
	// Server, Index and Store are the assembled parts.
	Server *server.Server
	Index  *index.Cache
	Store  store.Store
	Signer attest.Signer

	log     *slog.Logger
	grpc    *grpc.Server
	metrics *http.Server
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	errc    chan error
	stop    sync.Once
}

// NewLogger builds the logger a configuration asks for.
func NewLogger(c config.Log, w *os.File) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: lvl}
	if c.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// Start opens the store, loads the signing key and the last good index
// snapshots (re-verifying them, without the network), and starts serving.
// It returns once the listeners are bound; Wait blocks until the daemon
// stops, Stop stops it gracefully.
func Start(ctx context.Context, cfg *config.Config, opts Options) (_ *Daemon, err error) {
	if opts.Logger == nil {
		opts.Logger = NewLogger(cfg.Log, os.Stderr)
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	reg := opts.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	log := opts.Logger
	ctx, cancel := context.WithCancel(ctx)
	d := &Daemon{log: log, cancel: cancel, errc: make(chan error, 3)}
	defer func() {
		if err != nil {
			cancel()
			d.closeAll()
		}
	}()

	signer, err := attest.LoadSigner(cfg.SigningKey)
	if err != nil {
		return nil, fmt.Errorf("signing_key %s: %w", cfg.SigningKey, err)
	}
	d.Signer = signer

	st, err := store.Open(ctx, cfg.Store)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	d.Store = st

	icfg, repos, err := indexConfig(cfg, st, opts, reg)
	if err != nil {
		return nil, err
	}
	cache, err := index.New(ctx, icfg)
	if err != nil {
		return nil, fmt.Errorf("index cache: %w", err)
	}
	d.Index = cache

	policyDigest, err := attest.PolicyDigest(policyOf(cfg))
	if err != nil {
		return nil, fmt.Errorf("policy digest: %w", err)
	}
	auth, err := authConfig(cfg)
	if err != nil {
		return nil, err
	}
	srv, err := server.New(server.Config{
		Repositories: repos,
		Limits: server.Limits{
			MaxPackages:     cfg.Limits.MaxPackages,
			MaxControlBytes: cfg.Limits.MaxControlBytes,
			MaxRequestBytes: cfg.Limits.MaxRequestBytes,
			MaxInFlight:     cfg.Limits.MaxInFlight,
			QueueTimeout:    cfg.Limits.QueueTimeout.Std(),
		},
		Verifier:   attest.Verifier{ID: cfg.Verifier.ID, Version: Version},
		Policy:     attest.Policy{URI: cfg.Verifier.PolicyURI, SHA256: policyDigest},
		Auth:       auth,
		Clock:      opts.Clock,
		Registerer: reg,
		Logger:     log,
	}, server.Deps{Index: cache, Store: st, Signer: signer})
	if err != nil {
		return nil, err
	}
	d.Server = srv

	gopts := srv.ServerOptions()
	if cfg.TLS != nil {
		tc, err := serverTLS(cfg.TLS)
		if err != nil {
			return nil, err
		}
		gopts = append(gopts, grpc.Creds(credentials.NewTLS(tc)))
	}
	d.grpc = grpc.NewServer(gopts...)
	srv.Register(d.grpc)

	lis, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	d.Addr = lis.Addr()
	if m := *cfg.MetricsListen; m != "" {
		mlis, err := net.Listen("tcp", m)
		if err != nil {
			_ = lis.Close()
			return nil, fmt.Errorf("metrics_listen %s: %w", m, err)
		}
		d.MetricsAddr = mlis.Addr()
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
			if !cache.Ready() {
				http.Error(w, "index snapshots not loaded", http.StatusServiceUnavailable)
				return
			}
			_, _ = w.Write([]byte("ok\n"))
		})
		d.metrics = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		d.wg.Go(func() {
			if err := d.metrics.Serve(mlis); err != nil && !errors.Is(err, http.ErrServerClosed) {
				d.errc <- fmt.Errorf("metrics listener: %w", err)
			}
		})
	}
	if !opts.NoRefreshLoop {
		d.wg.Go(func() {
			if err := cache.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				d.errc <- fmt.Errorf("index refresh loop: %w", err)
			}
		})
	}
	d.wg.Go(func() { srv.RunHealth(ctx, time.Second) })
	d.wg.Go(func() {
		if err := d.grpc.Serve(lis); err != nil {
			d.errc <- fmt.Errorf("grpc listener: %w", err)
		}
	})
	log.Info("vouchd serving", "listen", d.Addr.String(), "metrics", fmt.Sprint(d.MetricsAddr),
		"tls", cfg.TLS != nil, "auth", cfg.Auth != nil, "repositories", len(cfg.Repositories),
		"key_id", signer.KeyID(), "ready", cache.Ready())
	return d, nil
}

// Wait blocks until ctx is done or a listener fails, then stops the daemon
// gracefully and returns the listener error, if any.
func (d *Daemon) Wait(ctx context.Context) error {
	var err error
	select {
	case <-ctx.Done():
	case err = <-d.errc:
	}
	d.Stop()
	return err
}

// Stop drains in-flight RPCs (at most DrainTimeout), then closes
// everything. Safe to call more than once.
func (d *Daemon) Stop() {
	d.stop.Do(func() {
		d.log.Info("vouchd stopping: draining")
		d.Server.Shutdown()
		done := make(chan struct{})
		go func() { d.grpc.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-time.After(DrainTimeout):
			d.log.Warn("drain timed out; stopping")
			d.grpc.Stop()
		}
		d.cancel()
		if d.metrics != nil {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = d.metrics.Shutdown(sctx)
			cancel()
		}
		d.wg.Wait()
		d.closeAll()
		d.log.Info("vouchd stopped")
	})
}

// Reload re-reads the tokens file (SIGHUP).
func (d *Daemon) Reload() error {
	if err := d.Server.Authenticator().Reload(); err != nil {
		d.log.Error("reload failed; keeping the previous tokens", "err", err)
		return err
	}
	d.log.Info("tokens reloaded", "tokens", d.Server.Authenticator().TokenCount())
	return nil
}

// Check makes every start-up check of Start that needs neither the store
// nor the network: the signing key (type and file mode), each repository's
// pinned keys and settings as the index cache validates them (URLs used
// twice, CA bundles), the tokens file and the TLS key pair and client CA.
// It opens no file for writing and no connection. A nil error means Start
// fails only on the store, the listeners or the network.
func Check(cfg *config.Config) error {
	if _, err := attest.LoadSigner(cfg.SigningKey); err != nil {
		return fmt.Errorf("signing_key %s: %w", cfg.SigningKey, err)
	}
	icfg, _, err := indexConfig(cfg, nil, Options{}, nil)
	if err != nil {
		return err
	}
	if err := icfg.ValidateWithoutStore(); err != nil {
		return fmt.Errorf("index cache: %w", err)
	}
	auth, err := authConfig(cfg)
	if err != nil {
		return err
	}
	if _, err := server.NewAuthenticator(auth); err != nil {
		return fmt.Errorf("auth.tokens_file: %w", err)
	}
	if cfg.TLS != nil {
		if _, err := serverTLS(cfg.TLS); err != nil {
			return err
		}
	}
	return nil
}

func authConfig(cfg *config.Config) (server.AuthConfig, error) {
	auth := server.AuthConfig{Disabled: cfg.Auth == nil}
	if cfg.Auth != nil {
		auth.TokensFile = cfg.Auth.TokensFile
		auth.Certificates = map[string][]server.Role{}
		for _, id := range cfg.Auth.ClientCertificates {
			roles, err := server.ParseRoles(id.Roles)
			if err != nil {
				return auth, fmt.Errorf("auth.client_certificates %s: %w", id.Identity, err)
			}
			auth.Certificates[id.Identity] = roles
		}
	}
	return auth, nil
}

func (d *Daemon) closeAll() {
	if d.Store != nil {
		_ = d.Store.Close()
		d.Store = nil
	}
}

func indexConfig(cfg *config.Config, st store.Store, opts Options, reg prometheus.Registerer) (index.Config, []server.Repository, error) {
	ic := index.Config{Store: st, Clock: opts.Clock, Registerer: reg, HTTPClient: opts.IndexHTTPClient, UserAgent: "vouchd/" + Version}
	var repos []server.Repository
	for i, r := range cfg.Repositories {
		keys, err := apk.LoadKeyring(r.Keys...)
		if err != nil {
			return ic, nil, fmt.Errorf("repositories[%d].keys: %w", i, err)
		}
		rc := index.RepositoryConfig{
			Name:          r.Name,
			URL:           r.URL,
			Mirrors:       r.Mirrors,
			Keys:          keys,
			Architectures: r.Architectures,
			Refresh:       r.Refresh.Std(),
			MaxAge:        r.MaxAge.Std(),
			History:       r.History.Std(),
			MaxIndexBytes: r.MaxIndexBytes,
			Supplier:      r.Supplier,
			Distro:        r.Distro,
		}
		if r.CABundle != "" {
			pemBytes, err := os.ReadFile(r.CABundle)
			if err != nil {
				return ic, nil, fmt.Errorf("repositories[%d].ca_bundle: %w", i, err)
			}
			rc.CABundlePEM = pemBytes
		}
		ic.Repositories = append(ic.Repositories, rc)
		repos = append(repos, server.Repository{Name: r.Name, URL: r.URL, Supplier: r.Supplier, Distro: r.Distro})
	}
	return ic, repos, nil
}

// policyOf is the effective verification policy that the VSA's policy digest
// covers: each repository's URLs, architectures, windows and the SHA-256 of
// each pinned key file.
func policyOf(cfg *config.Config) any {
	type repo struct {
		Name          string            `json:"name"`
		URL           string            `json:"url"`
		Mirrors       []string          `json:"mirrors"`
		Keys          map[string]string `json:"keys"`
		Architectures []string          `json:"architectures"`
		MaxAge        string            `json:"max_age"`
		History       string            `json:"history"`
	}
	var out []repo
	for _, r := range cfg.Repositories {
		keys := map[string]string{}
		for _, k := range r.Keys {
			if b, err := os.ReadFile(k); err == nil {
				keys[baseName(k)] = attest.PolicyDigestBytes(b)
			}
		}
		out = append(out, repo{Name: r.Name, URL: r.URL, Mirrors: r.Mirrors, Keys: keys,
			Architectures: r.Architectures, MaxAge: r.MaxAge.Std().String(), History: r.History.Std().String()})
	}
	return out
}

func baseName(p string) string {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '/' {
			return p[i+1:]
		}
	}
	return p
}

func serverTLS(c *config.TLS) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(c.Cert, c.Key)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if c.ClientCA != "" {
		pemBytes, err := os.ReadFile(c.ClientCA)
		if err != nil {
			return nil, fmt.Errorf("tls.client_ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemBytes) {
			return nil, fmt.Errorf("tls.client_ca %s: no PEM certificates", c.ClientCA)
		}
		tc.ClientCAs = pool
		tc.ClientAuth = tls.VerifyClientCertIfGiven
		if c.RequireClientCert {
			tc.ClientAuth = tls.RequireAndVerifyClientCert
		}
	}
	return tc, nil
}

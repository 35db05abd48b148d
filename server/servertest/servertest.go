// Package servertest starts a complete vouchd in-process on loopback — signed test repository, SQLite store, index cache, signer, gRPC server — for end-to-end tests.
package servertest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/vouchdev/vouch/apk"
	"github.com/vouchdev/vouch/attest"
	"github.com/vouchdev/vouch/internal/config"
	"github.com/vouchdev/vouch/internal/daemon"
	"github.com/vouchdev/vouch/internal/testrepo"
	vouchv1 "github.com/vouchdev/vouch/proto/vouch/v1"
)

// Options shape the environment. Zero values take the defaults noted.
type Options struct {
	// Packages to build into the repository; default DefaultPackages("x86_64").
	Packages []testrepo.Package
	// Arch of the repository's index. Default x86_64.
	Arch string
	// RepoName is the configured repository name. Default "testrepo".
	RepoName string
	// Tokens maps identities to roles; each gets a random bearer token
	// (Env.Tokens). Empty: authentication is off (anonymous, loopback).
	Tokens map[string][]string
	// MaxAge and History of the repository. Defaults 24h and 30 days.
	MaxAge, History time.Duration
	// Clock for the daemon; default time.Now.
	Clock func() time.Time
	// KeyType of vouch's signing key. Default ECDSA P-256.
	KeyType attest.KeyType
	// Store URL; default SQLite in the test's temp dir.
	Store string
	// Logger; default discards.
	Logger *slog.Logger
	// Config lets a test change the generated configuration before start.
	Config func(*config.Config)
}

// Env is a running vouchd with its repository.
type Env struct {
	Dir    string // temp dir holding everything
	Addr   string // gRPC address, 127.0.0.1:port
	Daemon *daemon.Daemon
	Config *config.Config

	Conn    *grpc.ClientConn
	Builder vouchv1.BuilderServiceClient
	Reader  vouchv1.ReaderServiceClient
	Admin   vouchv1.AdminServiceClient

	// Repository: URL (file://…), arch, signing key, and the built packages by name.
	RepoURL  string
	RepoDir  string
	Arch     string
	RepoKey  *testrepo.Key
	Packages map[string]*testrepo.BuiltPackage
	// Entries are the index entries currently published.
	Entries []apk.Entry

	// PublicKeyPath is vouch's public key file (PKIX PEM); PublicKeyPEM its bytes.
	PublicKeyPath string
	PublicKeyPEM  []byte
	// Tokens maps identities (Options.Tokens) to their bearer tokens.
	Tokens map[string]string

	mu sync.Mutex
}

// DefaultPackages is a small, varied package set for arch.
func DefaultPackages(arch string) []testrepo.Package {
	return []testrepo.Package{
		{Name: "busybox", Version: "1.36.1-r5", Arch: arch, License: "GPL-2.0-only"},
		{Name: "ca-certificates-bundle", Version: "20240226-r0", Arch: arch, License: "MPL-2.0 AND MIT"},
		{Name: "glibc", Version: "2.39-r1", Arch: arch, License: "LGPL-2.1-or-later"},
		{Name: "hello", Version: "2.12.1-r1", Arch: arch, License: "GPL-3.0-or-later"},
		{Name: "wolfi-baselayout", Version: "20230201-r7", Arch: "noarch", License: "MIT"},
	}
}

// Start builds the repository, writes a configuration and starts vouchd.
// Everything is torn down by t.Cleanup.
func Start(t testing.TB, o Options) *Env {
	t.Helper()
	if o.Arch == "" {
		o.Arch = "x86_64"
	}
	if o.RepoName == "" {
		o.RepoName = "testrepo"
	}
	if o.Packages == nil {
		o.Packages = DefaultPackages(o.Arch)
	}
	if o.KeyType == "" {
		o.KeyType = attest.KeyECDSAP256
	}
	dir := t.TempDir()
	e := &Env{Dir: dir, Arch: o.Arch, Packages: map[string]*testrepo.BuiltPackage{}, Tokens: map[string]string{}}

	key := testrepo.MustKey(t, "testrepo.rsa.pub")
	e.RepoKey = key
	keysDir := filepath.Join(dir, "keys")
	must(t, testrepo.WriteKeys(keysDir, key))
	e.RepoDir = filepath.Join(dir, "repo")
	e.RepoURL = "file://" + e.RepoDir
	var built []*testrepo.BuiltPackage
	for _, p := range o.Packages {
		b, err := p.Build()
		must(t, err)
		e.Packages[p.Name] = b
		built = append(built, b)
		ent := b.Entry
		ent.Arch = o.Arch // repositories rewrite noarch to the index arch
		e.Entries = append(e.Entries, ent)
	}
	idx, err := testrepo.Index{Entries: e.Entries, Signers: []testrepo.Signer{{Key: key}}}.Build()
	must(t, err)
	must(t, testrepo.WriteRepo(e.RepoDir, o.Arch, idx, built...))

	if _, err := attest.WriteKeyFiles(dir, o.KeyType); err != nil {
		t.Fatalf("servertest: writing vouch keys: %v", err)
	}
	e.PublicKeyPath = filepath.Join(dir, attest.PublicKeyFile)
	e.PublicKeyPEM, err = os.ReadFile(e.PublicKeyPath)
	must(t, err)

	storeURL := o.Store
	if storeURL == "" {
		storeURL = "sqlite://" + filepath.Join(dir, "vouch.db")
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "listen: 127.0.0.1:0\nmetrics_listen: 127.0.0.1:0\nstore: %s\nsigning_key: %s\n", storeURL, filepath.Join(dir, attest.PrivateKeyFile))
	if len(o.Tokens) > 0 {
		tokFile := filepath.Join(dir, "tokens.yaml")
		var tb strings.Builder
		tb.WriteString("tokens:\n")
		for id, roles := range o.Tokens {
			tok := randomToken()
			e.Tokens[id] = tok
			sum := sha256.Sum256([]byte(tok))
			fmt.Fprintf(&tb, "  - identity: %s\n    sha256: %s\n    roles: [%s]\n", id, hex.EncodeToString(sum[:]), strings.Join(roles, ", "))
		}
		must(t, os.WriteFile(tokFile, []byte(tb.String()), 0o600))
		fmt.Fprintf(&sb, "auth:\n  tokens_file: %s\n", tokFile)
	}
	maxAge, history := o.MaxAge, o.History
	if maxAge == 0 {
		maxAge = 24 * time.Hour
	}
	if history == 0 {
		history = 30 * 24 * time.Hour
	}
	fmt.Fprintf(&sb, `repositories:
  - name: %s
    url: %s
    keys: [%s]
    architectures: [%s]
    refresh: 1h
    max_age: %s
    history: %s
    supplier: "Organization: Test Repository"
    distro: wolfi
`, o.RepoName, e.RepoURL, filepath.Join(keysDir, key.Name), o.Arch, maxAge, history)
	cfgPath := filepath.Join(dir, "vouch.yaml")
	must(t, os.WriteFile(cfgPath, []byte(sb.String()), 0o600))
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatalf("servertest: config: %v\n%s", err, sb.String())
	}
	if o.Config != nil {
		o.Config(cfg)
	}
	e.Config = cfg
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	d, err := daemon.Start(ctx, cfg, daemon.Options{Logger: logger, Clock: o.Clock, NoRefreshLoop: true})
	if err != nil {
		cancel()
		t.Fatalf("servertest: starting vouchd: %v", err)
	}
	e.Daemon = d
	e.Addr = d.Addr.String()
	t.Cleanup(func() { d.Stop(); cancel() })
	// The first snapshot: the refresh loop is off, so fetch it now.
	if _, err := d.Index.Refresh(ctx, o.RepoName, ""); err != nil {
		t.Fatalf("servertest: first refresh: %v", err)
	}
	if !d.Index.Ready() {
		t.Fatalf("servertest: index not ready after the first refresh: %+v", d.Index.Status(ctx, ""))
	}
	conn, err := grpc.NewClient(e.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	must(t, err)
	t.Cleanup(func() { conn.Close() })
	e.Conn = conn
	e.Builder = vouchv1.NewBuilderServiceClient(conn)
	e.Reader = vouchv1.NewReaderServiceClient(conn)
	e.Admin = vouchv1.NewAdminServiceClient(conn)
	return e
}

// Claim is the claim a correct builder makes for the named package.
func (e *Env) Claim(name string) *vouchv1.PackageClaim {
	b := e.Packages[name]
	if b == nil {
		panic("servertest: no package " + name)
	}
	return &vouchv1.PackageClaim{
		Name:       b.Entry.Name,
		Version:    b.Entry.Version,
		Arch:       e.Arch,
		Repository: e.RepoURL,
		Checksum:   b.Checksum.String(),
	}
}

// Claims returns the claims for every package, sorted by name.
func (e *Env) Claims() []*vouchv1.PackageClaim {
	var names []string
	for n := range e.Packages {
		names = append(names, n)
	}
	slices.Sort(names)
	out := make([]*vouchv1.PackageClaim, len(names))
	for i, n := range names {
		out[i] = e.Claim(n)
	}
	return out
}

// Publish re-signs and writes the index with entries (the repository key),
// as the repository would publish a new index. Call Refresh to load it.
func (e *Env) Publish(t testing.TB, entries []apk.Entry) {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	idx, err := testrepo.Index{Entries: entries, Signers: []testrepo.Signer{{Key: e.RepoKey}}}.Build()
	must(t, err)
	must(t, testrepo.WriteRepo(e.RepoDir, e.Arch, idx))
	e.Entries = entries
}

// Refresh forces a refresh of the repository and fails the test on error.
func (e *Env) Refresh(t testing.TB) {
	t.Helper()
	if _, err := e.Daemon.Index.Refresh(context.Background(), e.Config.Repositories[0].Name, ""); err != nil {
		t.Fatalf("servertest: refresh: %v", err)
	}
}

// Subject returns a random image subject.
func Subject(name string) *vouchv1.Subject {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return &vouchv1.Subject{Name: name, Digest: map[string]string{"sha256": hex.EncodeToString(b[:])}}
}

func randomToken() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return "vouch_" + hex.EncodeToString(b[:])
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("servertest: %v", err)
	}
}

package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	"github.com/vouchdev/vouch/apk"
	"github.com/vouchdev/vouch/attest"
	"github.com/vouchdev/vouch/index"
	vouchv1 "github.com/vouchdev/vouch/proto/vouch/v1"
	"github.com/vouchdev/vouch/store"
)

// Indexes is what the server needs of the index cache (*index.Cache
// implements it; tests may substitute a fake).
type Indexes interface {
	Resolve(builderURL string) (repo string, ok bool)
	Lookup(ctx context.Context, repo, arch, name, version string) index.Lookup
	Refresh(ctx context.Context, repo, arch string) ([]index.RefreshResult, error)
	Status(ctx context.Context, repo string) []index.RepositoryStatus
	Repository(name string) (index.RepositoryConfig, bool)
	Ready() bool
	AcceptEquivocation(ctx context.Context, repo, arch, name, version string, sum apk.Checksum, reason, who string) (store.Event, error)
}

// Repository is what the attestations say about a configured repository.
type Repository struct {
	Name     string
	URL      string
	Supplier string // SPDX supplier, e.g. "Organization: Wolfi"
	Distro   string // purl namespace
}

// Config configures a Server. Zero values take documented defaults.
type Config struct {
	// Repositories by name, for the attestations' supplier and purl.
	Repositories []Repository
	// Limits bound requests.
	Limits Limits
	// Verifier and Policy name vouch and its effective configuration in
	// the VSA.
	Verifier attest.Verifier
	Policy   attest.Policy
	// Auth configures authentication.
	Auth AuthConfig
	// Clock returns the current time; default time.Now.
	Clock func() time.Time
	// RevocationCacheTTL bounds how long a replica may answer from a cached
	// revocation list before re-checking the store's version (revocations
	// made on another replica take effect within it). Default 1s.
	RevocationCacheTTL time.Duration
	// Registerer receives the server's metrics (nil: none).
	Registerer prometheus.Registerer
	// Logger receives request logs and internal errors (nil: discard).
	Logger *slog.Logger
}

// Deps are the server's collaborators.
type Deps struct {
	Index  Indexes
	Store  store.Store
	Signer attest.Signer
}

// Server implements the BuilderService, ReaderService and AdminService.
// It is safe for concurrent use.
type Server struct {
	vouchv1.UnimplementedBuilderServiceServer
	vouchv1.UnimplementedReaderServiceServer
	vouchv1.UnimplementedAdminServiceServer

	cfg     Config
	idx     Indexes
	st      store.Store
	signer  attest.Signer
	auth    *Authenticator
	log     *slog.Logger
	metrics *metrics
	repos   map[string]Repository
	health  *health.Server
	revs    revocationCache
	datah   datahashCache
	slots   chan struct{} // one per VerifyPackages call in flight
}

// New builds a Server.
func New(cfg Config, deps Deps) (*Server, error) {
	if deps.Index == nil || deps.Store == nil || deps.Signer == nil {
		return nil, errors.New("server: Index, Store and Signer are required")
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.RevocationCacheTTL <= 0 {
		cfg.RevocationCacheTTL = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Verifier.ID == "" {
		cfg.Verifier.ID = attest.DefaultVerifierID
	}
	cfg.Limits = cfg.Limits.withDefaults()
	auth, err := NewAuthenticator(cfg.Auth)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:     cfg,
		idx:     deps.Index,
		st:      deps.Store,
		signer:  deps.Signer,
		auth:    auth,
		log:     cfg.Logger,
		metrics: newMetrics(cfg.Registerer),
		repos:   map[string]Repository{},
		health:  health.NewServer(),
		slots:   make(chan struct{}, cfg.Limits.MaxInFlight),
	}
	for _, r := range cfg.Repositories {
		s.repos[r.Name] = r
	}
	s.revs.ttl = cfg.RevocationCacheTTL
	s.datah.init(100_000)
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	return s, nil
}

// Authenticator returns the server's authenticator (for SIGHUP reloads).
func (s *Server) Authenticator() *Authenticator { return s.auth }

// ServerOptions returns the grpc.ServerOptions the services need: the
// interceptors and the message size limit. Callers add credentials.
func (s *Server) ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.UnaryInterceptor(s.unaryInterceptor),
		grpc.StreamInterceptor(s.streamInterceptor),
		grpc.MaxRecvMsgSize(s.cfg.Limits.MaxRequestBytes),
		grpc.MaxSendMsgSize(64 << 20),
	}
}

// Register registers the three services, health and reflection on g.
func (s *Server) Register(g *grpc.Server) {
	vouchv1.RegisterBuilderServiceServer(g, s)
	vouchv1.RegisterReaderServiceServer(g, s)
	vouchv1.RegisterAdminServiceServer(g, s)
	healthpb.RegisterHealthServer(g, s.health)
	reflection.Register(g)
}

// RunHealth sets the health status to SERVING once every configured
// repository has a verified snapshot loaded (and back, should that change),
// polling every interval until ctx is done; then NOT_SERVING.
func (s *Server) RunHealth(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	last := healthpb.HealthCheckResponse_UNKNOWN
	for {
		st := healthpb.HealthCheckResponse_NOT_SERVING
		if s.idx.Ready() {
			st = healthpb.HealthCheckResponse_SERVING
		}
		if st != last {
			for _, svc := range []string{"", vouchv1.BuilderService_ServiceDesc.ServiceName, vouchv1.ReaderService_ServiceDesc.ServiceName, vouchv1.AdminService_ServiceDesc.ServiceName} {
				s.health.SetServingStatus(svc, st)
			}
			last = st
		}
		select {
		case <-ctx.Done():
			s.health.Shutdown()
			return
		case <-t.C:
		}
	}
}

// Shutdown marks the server NOT_SERVING (for a drain before GracefulStop).
func (s *Server) Shutdown() { s.health.Shutdown() }

// revocationCache keeps the revocation set, re-reading it when the store's
// version changes; the version is checked at most once per ttl.
type revocationCache struct {
	ttl     time.Duration
	mu      sync.Mutex
	checked time.Time
	version int64
	loaded  bool
	byKey   map[string]store.Revocation
}

func (c *revocationCache) get(ctx context.Context, st store.Store, now time.Time) (map[string]store.Revocation, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.loaded && now.Sub(c.checked) < c.ttl {
		return c.byKey, nil
	}
	v, err := st.RevocationsVersion(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading revocations version: %w", err)
	}
	if !c.loaded || v != c.version {
		set, err := st.Revocations(ctx)
		if err != nil {
			return nil, fmt.Errorf("reading revocations: %w", err)
		}
		m := make(map[string]store.Revocation, len(set.Revocations))
		for _, r := range set.Revocations {
			m[r.Checksum.Key()] = r
		}
		c.byKey, c.version, c.loaded = m, set.Version, true
	}
	c.checked = now
	return c.byKey, nil
}

// invalidate forces the next get to re-check the store.
func (c *revocationCache) invalidate() {
	c.mu.Lock()
	c.loaded = false
	c.mu.Unlock()
}

// datahashCache remembers the datahash that verified control members bound
// to a checksum, so that a later claim of a datahash without the control
// member can be checked. Bounded; when full it is cleared (it is only an
// aid: a claim it cannot check is simply not attested as verified).
type datahashCache struct {
	mu  sync.RWMutex
	max int
	m   map[string]string
}

func (c *datahashCache) init(max int) { c.max, c.m = max, map[string]string{} }

func (c *datahashCache) get(sum apk.Checksum) (string, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	d, ok := c.m[sum.Key()]
	return d, ok
}

func (c *datahashCache) put(sum apk.Checksum, datahash string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		clear(c.m)
	}
	c.m[sum.Key()] = datahash
}

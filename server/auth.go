package server

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync/atomic"

	"go.yaml.in/yaml/v3"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
)

// Role is what an identity may do.
type Role string

// Roles. Each service needs one of the roles listed in serviceRoles.
const (
	RoleBuilder Role = "builder" // VerifyPackages (and reads)
	RoleReader  Role = "reader"  // read-only queries
	RoleAdmin   Role = "admin"   // everything
)

// AnonymousIdentity is recorded for callers when authentication is off
// (loopback-only deployments and the demo).
const AnonymousIdentity = "anonymous"

// Authentication errors; the error mapping turns them into Unauthenticated
// and PermissionDenied.
var (
	// ErrUnauthenticated: no credentials, or credentials that match nothing.
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrPermissionDenied: a known identity without a role the service needs.
	ErrPermissionDenied = errors.New("permission denied")
	// ErrTokensFile: the tokens file cannot be read or is malformed.
	ErrTokensFile = errors.New("invalid tokens file")
)

// serviceRoles lists the roles that may call each service.
var serviceRoles = map[string][]Role{
	"vouch.v1.BuilderService": {RoleBuilder, RoleAdmin},
	"vouch.v1.ReaderService":  {RoleReader, RoleBuilder, RoleAdmin},
	"vouch.v1.AdminService":   {RoleAdmin},
}

// openServices need no credentials: health checks and reflection.
var openServices = []string{"grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"}

// Caller is an authenticated identity with its roles.
type Caller struct {
	Identity string
	Roles    []Role
	// Via is "token", "certificate" or "none".
	Via string
}

func (c Caller) has(roles []Role) bool {
	for _, r := range c.Roles {
		if slices.Contains(roles, r) {
			return true
		}
	}
	return false
}

type callerKey struct{}

// CallerFrom returns the caller that the auth interceptor attached to ctx.
func CallerFrom(ctx context.Context) (Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(Caller)
	return c, ok
}

func withCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// TokenEntry is one line of the tokens file: a bearer token's SHA-256 (hex),
// never the token itself.
type TokenEntry struct {
	Identity string   `yaml:"identity"`
	SHA256   string   `yaml:"sha256"`
	Roles    []string `yaml:"roles"`
}

type tokenTable struct {
	byHash map[[sha256.Size]byte]Caller
}

// AuthConfig configures the Authenticator.
type AuthConfig struct {
	// Disabled makes every caller AnonymousIdentity with every role. Only for
	// loopback listeners; the config validation enforces that.
	Disabled bool
	// TokensFile is the YAML file of hashed tokens ("" for none).
	TokensFile string
	// Certificates maps client-certificate identities to roles.
	Certificates map[string][]Role
}

// Authenticator resolves callers from bearer tokens or verified client
// certificates. It is safe for concurrent use; Reload swaps the token table
// atomically.
type Authenticator struct {
	cfg    AuthConfig
	tokens atomic.Pointer[tokenTable]
}

// NewAuthenticator loads the tokens file (if any).
func NewAuthenticator(cfg AuthConfig) (*Authenticator, error) {
	a := &Authenticator{cfg: cfg}
	a.tokens.Store(&tokenTable{byHash: map[[sha256.Size]byte]Caller{}})
	if err := a.Reload(); err != nil {
		return nil, err
	}
	return a, nil
}

// Reload re-reads the tokens file; on error the previous table stays.
func (a *Authenticator) Reload() error {
	if a.cfg.TokensFile == "" {
		return nil
	}
	t, err := LoadTokens(a.cfg.TokensFile)
	if err != nil {
		return err
	}
	a.tokens.Store(t)
	return nil
}

// TokenCount is the number of tokens loaded.
func (a *Authenticator) TokenCount() int { return len(a.tokens.Load().byHash) }

// LoadTokens reads a tokens file:
//
//	tokens:
//	  - identity: ci-builder
//	    sha256: <64 hex: SHA-256 of the bearer token>
//	    roles: [builder]
func LoadTokens(path string) (*tokenTable, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTokensFile, err)
	}
	var f struct {
		Tokens []TokenEntry `yaml:"tokens"`
	}
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrTokensFile, path, err)
	}
	t := &tokenTable{byHash: map[[sha256.Size]byte]Caller{}}
	for i, e := range f.Tokens {
		where := fmt.Sprintf("%s: tokens[%d]", path, i)
		if e.Identity == "" {
			return nil, fmt.Errorf("%w: %s.identity: required", ErrTokensFile, where)
		}
		raw, err := hex.DecodeString(e.SHA256)
		if err != nil || len(raw) != sha256.Size {
			return nil, fmt.Errorf("%w: %s.sha256: want 64 hex characters (sha256sum of the token)", ErrTokensFile, where)
		}
		roles, err := parseRoles(e.Roles)
		if err != nil {
			return nil, fmt.Errorf("%w: %s.roles: %w", ErrTokensFile, where, err)
		}
		var h [sha256.Size]byte
		copy(h[:], raw)
		if _, dup := t.byHash[h]; dup {
			return nil, fmt.Errorf("%w: %s.sha256: the same token is listed twice", ErrTokensFile, where)
		}
		t.byHash[h] = Caller{Identity: e.Identity, Roles: roles, Via: "token"}
	}
	return t, nil
}

func parseRoles(in []string) ([]Role, error) {
	if len(in) == 0 {
		return nil, errors.New("at least one of builder, reader, admin")
	}
	out := make([]Role, 0, len(in))
	for _, r := range in {
		switch Role(r) {
		case RoleBuilder, RoleReader, RoleAdmin:
			out = append(out, Role(r))
		default:
			return nil, fmt.Errorf("unknown role %q (want builder, reader or admin)", r)
		}
	}
	return out, nil
}

// ParseRoles validates role names.
func ParseRoles(in []string) ([]Role, error) { return parseRoles(in) }

// authenticate finds the caller of ctx. A bearer token wins over a client
// certificate when both are present.
func (a *Authenticator) authenticate(ctx context.Context) (Caller, error) {
	if a.cfg.Disabled {
		return Caller{Identity: AnonymousIdentity, Roles: []Role{RoleAdmin}, Via: "none"}, nil
	}
	md, _ := metadata.FromIncomingContext(ctx)
	if vals := md.Get("authorization"); len(vals) > 0 {
		if len(vals) > 1 {
			return Caller{}, fmt.Errorf("%w: more than one authorization header", ErrUnauthenticated)
		}
		tok, ok := strings.CutPrefix(vals[0], "Bearer ")
		if !ok || tok == "" {
			return Caller{}, fmt.Errorf("%w: authorization header is not \"Bearer <token>\"", ErrUnauthenticated)
		}
		// Only hashes are kept, and the table is keyed by the SHA-256 of the
		// presented token: any timing difference of the lookup concerns a
		// hash the caller cannot steer towards a stored one.
		h := sha256.Sum256([]byte(tok))
		if c, ok := a.tokens.Load().byHash[h]; ok {
			return c, nil
		}
		return Caller{}, fmt.Errorf("%w: unknown bearer token", ErrUnauthenticated)
	}
	if id, ok := certIdentity(ctx); ok {
		if roles, known := a.cfg.Certificates[id]; known {
			return Caller{Identity: id, Roles: roles, Via: "certificate"}, nil
		}
		return Caller{}, fmt.Errorf("%w: client certificate identity %q has no roles", ErrPermissionDenied, id)
	}
	return Caller{}, fmt.Errorf("%w: no bearer token or client certificate", ErrUnauthenticated)
}

// certIdentity returns the identity of a verified client certificate: its
// first URI SAN, else its subject common name, else its first DNS SAN.
func certIdentity(ctx context.Context) (string, bool) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return "", false
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(ti.State.VerifiedChains) == 0 || len(ti.State.VerifiedChains[0]) == 0 {
		return "", false
	}
	return CertificateIdentity(ti.State.VerifiedChains[0][0])
}

// CertificateIdentity names a client certificate: its first URI SAN, else
// its subject common name, else its first DNS SAN.
func CertificateIdentity(c *x509.Certificate) (string, bool) {
	switch {
	case len(c.URIs) > 0:
		return c.URIs[0].String(), true
	case c.Subject.CommonName != "":
		return c.Subject.CommonName, true
	case len(c.DNSNames) > 0:
		return c.DNSNames[0], true
	}
	return "", false
}

// authorize checks that the caller may call fullMethod
// ("/vouch.v1.AdminService/RevokeChecksum").
func authorize(c Caller, fullMethod string) error {
	svc := serviceOf(fullMethod)
	if slices.Contains(openServices, svc) {
		return nil
	}
	roles, ok := serviceRoles[svc]
	if !ok {
		return fmt.Errorf("%w: unknown service %q", ErrPermissionDenied, svc)
	}
	if !c.has(roles) {
		return fmt.Errorf("%w: %s (roles %v) may not call %s (needs one of %v)", ErrPermissionDenied, c.Identity, c.Roles, svc, roles)
	}
	return nil
}

func serviceOf(fullMethod string) string {
	s := strings.TrimPrefix(fullMethod, "/")
	if i := strings.IndexByte(s, '/'); i >= 0 {
		return s[:i]
	}
	return s
}

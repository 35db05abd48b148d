package store

import (
	"context"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"sync"
)

// OpenFunc opens a backend from a store URL whose scheme it was registered
// for.
type OpenFunc func(ctx context.Context, rawURL string) (Store, error)

var (
	backendsMu sync.RWMutex
	backends   = map[string]OpenFunc{}
)

// Register makes a backend available to Open under a URL scheme. Backends
// call it from an init function (store/sqlite registers "sqlite",
// store/postgres "postgres" and "postgresql"), so a binary selects the
// backends it supports by importing them, as with database/sql drivers.
// Registering a scheme twice panics.
func Register(scheme string, open OpenFunc) {
	backendsMu.Lock()
	defer backendsMu.Unlock()
	if _, dup := backends[scheme]; dup {
		panic("store: backend registered twice for scheme " + scheme)
	}
	backends[scheme] = open
}

// Open opens the store a URL names, applying schema migrations first:
//
//	sqlite:///var/lib/vouch/vouch.db   SQLite file (absolute path)
//	sqlite://:memory:                  SQLite in memory (tests)
//	postgres://user@host:5432/db?sslmode=disable[&schema=name]
//
// The backend for the scheme must have been imported (see Register);
// otherwise, or when the URL is malformed, the error wraps
// ErrInvalidArgument.
func Open(ctx context.Context, rawURL string) (Store, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		// Do not echo the URL: it may carry a password.
		return nil, fmt.Errorf("opening store: %w: malformed URL", ErrInvalidArgument)
	}
	scheme := strings.ToLower(u.Scheme)
	backendsMu.RLock()
	open, ok := backends[scheme]
	backendsMu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("opening store: %w: no backend for scheme %q (have %s)", ErrInvalidArgument, scheme, strings.Join(Schemes(), ", "))
	}
	return open(ctx, rawURL)
}

// Schemes lists the registered URL schemes, sorted.
func Schemes() []string {
	backendsMu.RLock()
	defer backendsMu.RUnlock()
	out := make([]string, 0, len(backends))
	for s := range backends {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

package index

import (
	"crypto/x509"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vouchdev/vouch/apk"
	"github.com/vouchdev/vouch/store"
)

// Defaults applied by Config.Validate to zero fields.
const (
	DefaultRefresh        = 5 * time.Minute
	DefaultMaxAge         = 24 * time.Hour
	DefaultHistory        = 30 * 24 * time.Hour
	DefaultMaxIndexBytes  = 300 << 20 // decompressed index (apko's bound)
	DefaultConnectTimeout = 10 * time.Second
	DefaultHeaderTimeout  = 30 * time.Second
	DefaultBodyTimeout    = 5 * time.Minute
	DefaultMaxBodyBytes   = apk.DefaultMaxIndexSize // 128 MiB compressed
	DefaultRetries        = 2
	DefaultRetryBackoff   = time.Second
	DefaultMaxBackoff     = 30 * time.Second
	DefaultPollInterval   = 30 * time.Second
	DefaultEventsInStatus = 10
)

// maxDecompressed is the largest MaxIndexBytes apk accepts.
const maxDecompressed = 1<<32 - 1

// RepositoryConfig is one APK repository. Zero durations and sizes take the
// documented defaults in Config.Validate.
type RepositoryConfig struct {
	// Name is the configured repository name, e.g. "wolfi". Required,
	// unique.
	Name string
	// URL is the canonical repository URL without the arch, e.g.
	// https://packages.wolfi.dev/os. Schemes https, http and file.
	// The index of arch A is fetched from <URL>/<A>/APKINDEX.tar.gz.
	URL string
	// Mirrors are tried in order after the canonical URL fails. A mirror is
	// untrusted transport: what it serves is held to exactly the same
	// signature, rollback and equivocation rules.
	Mirrors []string
	// Keys are the repository's pinned signing keys. Required. A key
	// trusts only the repositories whose Keys hold it.
	Keys *apk.Keyring
	// Architectures served, e.g. x86_64, aarch64. Required.
	Architectures []string
	// Refresh is the interval between refreshes of each arch (with ±10%
	// jitter). Default 5m.
	Refresh time.Duration
	// MaxAge: an arch whose last successful fetch or 304 is older than this
	// is stale and Lookup answers Stale (fail closed). Default 24h.
	MaxAge time.Duration
	// History is how long an entry that left the index still verifies.
	// Default 30 days.
	History time.Duration
	// RootCAs, or CABundlePEM, replaces the system roots for https fetches
	// of this repository (canonical URL and mirrors). At most one may be
	// set.
	RootCAs     *x509.CertPool
	CABundlePEM []byte
	// MaxIndexBytes bounds the decompressed index (gzip bombs). Default
	// 300 MiB, at most 4 GiB - 1.
	MaxIndexBytes int64
	// Supplier and Distro are carried for attestations (SPDX supplier, purl
	// namespace); the cache itself does not use them. Distro defaults to
	// Name.
	Supplier string
	Distro   string
}

// Config configures a Cache.
type Config struct {
	// Repositories to serve. At least one.
	Repositories []RepositoryConfig
	// Store persists snapshots, entries and events. Required.
	Store store.Store

	// ConnectTimeout bounds TCP connect and TLS handshake. Default 10s.
	ConnectTimeout time.Duration
	// HeaderTimeout bounds the wait for response headers once the request
	// is sent. Default 30s.
	HeaderTimeout time.Duration
	// BodyTimeout bounds one whole attempt, body included. Default 5m.
	BodyTimeout time.Duration
	// MaxBodyBytes bounds the downloaded (compressed) file. Default 128 MiB.
	MaxBodyBytes int64
	// Retries is the number of extra attempts per source after a
	// transient failure (network error, timeout, HTTP 5xx, 408 or 429). Default
	// 2; -1 means none.
	Retries int
	// RetryBackoff is the base of the exponential backoff between attempts
	// (full jitter: a random wait in [0, base*2^n]), capped at MaxBackoff.
	// Defaults 1s and 30s.
	RetryBackoff time.Duration
	MaxBackoff   time.Duration
	// PollInterval is how often Run polls the store for snapshots saved by
	// other replicas, besides store notices. Default 30s.
	PollInterval time.Duration
	// EventsInStatus is the number of recent events Status returns per
	// arch. Default 10.
	EventsInStatus int

	// Clock returns the current time. Default time.Now. Freshness, history
	// windows and recorded times all use it.
	Clock func() time.Time
	// Registerer receives the vouch_index_* metrics; nil means no metrics.
	Registerer prometheus.Registerer
	// HTTPClient, when set, is used for every http(s) fetch instead of
	// the client built from the timeouts and CA settings (tests). The
	// header and body timeouts still apply; ConnectTimeout and the CA
	// settings do not.
	HTTPClient *http.Client
	// Transport, when set (and HTTPClient is not), is the RoundTripper of
	// the built client.
	Transport http.RoundTripper
	// UserAgent is sent with every request. Default "vouch-index".
	UserAgent string
}

// Validate fills defaults into zero fields and reports the first problem,
// wrapping ErrInvalidConfig. It is called by New; calling it twice is
// harmless.
func (c *Config) Validate() error {
	if c.Store == nil {
		return fmt.Errorf("%w: Store is required", ErrInvalidConfig)
	}
	return c.ValidateWithoutStore()
}

// ValidateWithoutStore is Validate without the requirement of a Store: it
// checks everything that needs neither the store nor the network (vouchd
// --check). It fills defaults like Validate.
func (c *Config) ValidateWithoutStore() error {
	if len(c.Repositories) == 0 {
		return fmt.Errorf("%w: no repositories", ErrInvalidConfig)
	}
	setDur := func(d *time.Duration, def time.Duration) {
		if *d == 0 {
			*d = def
		}
	}
	setDur(&c.ConnectTimeout, DefaultConnectTimeout)
	setDur(&c.HeaderTimeout, DefaultHeaderTimeout)
	setDur(&c.BodyTimeout, DefaultBodyTimeout)
	setDur(&c.RetryBackoff, DefaultRetryBackoff)
	setDur(&c.MaxBackoff, DefaultMaxBackoff)
	setDur(&c.PollInterval, DefaultPollInterval)
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	switch {
	case c.Retries == 0:
		c.Retries = DefaultRetries
	case c.Retries < 0:
		c.Retries = -1
	}
	if c.EventsInStatus == 0 {
		c.EventsInStatus = DefaultEventsInStatus
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.UserAgent == "" {
		c.UserAgent = "vouch-index"
	}
	for name, d := range map[string]time.Duration{
		"ConnectTimeout": c.ConnectTimeout, "HeaderTimeout": c.HeaderTimeout, "BodyTimeout": c.BodyTimeout,
		"RetryBackoff": c.RetryBackoff, "MaxBackoff": c.MaxBackoff, "PollInterval": c.PollInterval,
	} {
		if d < 0 {
			return fmt.Errorf("%w: %s %s is negative", ErrInvalidConfig, name, d)
		}
	}
	if c.MaxBodyBytes < 0 {
		return fmt.Errorf("%w: MaxBodyBytes %d is negative", ErrInvalidConfig, c.MaxBodyBytes)
	}
	names := map[string]bool{}
	urls := map[string]string{}
	for i := range c.Repositories {
		r := &c.Repositories[i]
		if err := r.validate(); err != nil {
			return fmt.Errorf("%w: repositories[%d]: %w", ErrInvalidConfig, i, err)
		}
		if names[r.Name] {
			return fmt.Errorf("%w: repositories[%d]: name %q is used twice", ErrInvalidConfig, i, r.Name)
		}
		names[r.Name] = true
		for _, u := range append([]string{r.URL}, r.Mirrors...) {
			k, _ := normalizeURL(u)
			if other, dup := urls[k]; dup {
				return fmt.Errorf("%w: repositories[%d]: URL %q is also used by %q", ErrInvalidConfig, i, u, other)
			}
			urls[k] = r.Name
		}
	}
	return nil
}

func (r *RepositoryConfig) validate() error {
	if r.Name == "" || strings.ContainsAny(r.Name, "/ \t\n\x00") {
		return fmt.Errorf("name %q: want a non-empty name without slashes or spaces", r.Name)
	}
	for i, u := range append([]string{r.URL}, r.Mirrors...) {
		field := "url"
		if i > 0 {
			field = fmt.Sprintf("mirrors[%d]", i-1)
		}
		if _, err := normalizeURL(u); err != nil {
			return fmt.Errorf("%s: %w", field, err)
		}
	}
	if r.Keys == nil || r.Keys.Len() == 0 {
		return fmt.Errorf("keys: at least one pinned key is required")
	}
	if len(r.Architectures) == 0 {
		return fmt.Errorf("architectures: at least one is required")
	}
	seen := map[string]bool{}
	for _, a := range r.Architectures {
		if a == "" || a == "." || a == ".." || strings.ContainsAny(a, "/\\ ?#%\x00") {
			return fmt.Errorf("architectures: %q is not an architecture name", a)
		}
		if seen[a] {
			return fmt.Errorf("architectures: %q listed twice", a)
		}
		seen[a] = true
	}
	if r.Refresh == 0 {
		r.Refresh = DefaultRefresh
	}
	if r.MaxAge == 0 {
		r.MaxAge = DefaultMaxAge
	}
	if r.History == 0 {
		r.History = DefaultHistory
	}
	if r.MaxIndexBytes == 0 {
		r.MaxIndexBytes = DefaultMaxIndexBytes
	}
	if r.Distro == "" {
		r.Distro = r.Name
	}
	switch {
	case r.Refresh < 0:
		return fmt.Errorf("refresh %s is negative", r.Refresh)
	case r.MaxAge < 0:
		return fmt.Errorf("max age %s is negative", r.MaxAge)
	case r.History < 0:
		return fmt.Errorf("history %s is negative", r.History)
	case r.MaxIndexBytes < 0 || r.MaxIndexBytes > maxDecompressed:
		return fmt.Errorf("max index bytes %d: want 1..%d", r.MaxIndexBytes, int64(maxDecompressed))
	case r.RootCAs != nil && len(r.CABundlePEM) > 0:
		return fmt.Errorf("set RootCAs or CABundlePEM, not both")
	}
	if len(r.CABundlePEM) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(r.CABundlePEM) {
			return fmt.Errorf("CA bundle: no PEM certificate found")
		}
	}
	return nil
}

// normalizeURL returns the comparison form of a repository URL:
// lower-case scheme and host, path without trailing slashes, no default
// port. It refuses URLs with another scheme, user info, a query or a
// fragment.
func normalizeURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("%q is not a URL", raw)
	}
	scheme := strings.ToLower(u.Scheme)
	switch scheme {
	case "https", "http":
		if u.Host == "" {
			return "", fmt.Errorf("%q has no host", raw)
		}
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return "", fmt.Errorf("%q: file URLs must be local (file:///path)", raw)
		}
		if u.Path == "" || u.Path[0] != '/' {
			return "", fmt.Errorf("%q: file URLs need an absolute path", raw)
		}
	default:
		return "", fmt.Errorf("%q: scheme must be https, http or file", raw)
	}
	if u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.Opaque != "" {
		return "", fmt.Errorf("%q: no user info, query or fragment allowed", raw)
	}
	host := strings.ToLower(u.Host)
	if scheme == "file" {
		host = ""
	}
	if p := u.Port(); (scheme == "https" && p == "443") || (scheme == "http" && p == "80") {
		host = strings.TrimSuffix(host, ":"+p)
	}
	path := strings.TrimRight(u.EscapedPath(), "/")
	return scheme + "://" + host + path, nil
}

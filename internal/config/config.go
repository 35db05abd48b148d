// Package config loads and validates vouchd's YAML configuration file.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/vouchdev/vouch/attest"
)

// Defaults applied by Load when a field is absent.
const (
	DefaultListen          = "127.0.0.1:7443"
	DefaultMetricsListen   = "127.0.0.1:9464"
	DefaultRefresh         = 5 * time.Minute
	DefaultMaxAge          = 24 * time.Hour
	DefaultHistory         = 30 * 24 * time.Hour
	DefaultMaxPackages     = 10_000
	DefaultMaxControlBytes = 64 << 10
	DefaultMaxRequestBytes = 32 << 20
	DefaultMaxIndexBytes   = 300 << 20
	DefaultMaxInFlight     = 64
	DefaultQueueTimeout    = time.Second
	DefaultVerifierID      = "https://github.com/vouchdev/vouch"
	DefaultLogFormat       = "json"
	DefaultLogLevel        = "info"
)

// ErrInvalid is wrapped by every validation error; errors.As to *Error or
// *Errors gives the details.
var ErrInvalid = errors.New("invalid configuration")

// Error is one problem in a configuration file: where, which field, what.
type Error struct {
	File  string // path of the file
	Line  int    // 1-based line, 0 when unknown
	Field string // dotted path, e.g. "repositories[0].max_age"
	Msg   string // what is wrong and what was expected
}

func (e *Error) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc += ":" + strconv.Itoa(e.Line)
	}
	if e.Field == "" {
		return loc + ": " + e.Msg
	}
	return loc + ": " + e.Field + ": " + e.Msg
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *Error) Unwrap() error { return ErrInvalid }

// Errors is every problem found in one file, in file order; problems
// without a line (a required field that is absent) come last.
type Errors []*Error

// sorted orders es by line, keeping the order of checks within a line and
// putting line 0 (unknown) last.
func (es Errors) sorted() Errors {
	slices.SortStableFunc(es, func(a, b *Error) int {
		switch {
		case a.Line == b.Line:
			return 0
		case a.Line == 0:
			return 1
		case b.Line == 0:
			return -1
		}
		return a.Line - b.Line
	})
	return es
}

func (es Errors) Error() string {
	var b strings.Builder
	for i, e := range es {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (es Errors) Unwrap() error { return ErrInvalid }

// Duration is a time.Duration written as a Go duration ("90s", "5m", "24h")
// or in days ("30d").
type Duration time.Duration

// Std returns the value as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// ParseDuration parses a Go duration or a whole number of days ("30d").
func ParseDuration(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%q is not a duration (want e.g. 90s, 5m, 24h or 30d)", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration (want e.g. 90s, 5m, 24h or 30d)", s)
	}
	return d, nil
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("want a duration such as 5m or 24h")
	}
	v, err := ParseDuration(n.Value)
	if err != nil {
		// A TypeError lets the decoder go on and keeps the line number.
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %v", n.Line, err)}}
	}
	*d = Duration(v)
	return nil
}

// Config is vouchd's configuration. See docs/CONFIG.md for every field.
type Config struct {
	// Listen is the gRPC address. Default 127.0.0.1:7443.
	Listen string `yaml:"listen"`
	// MetricsListen is the Prometheus /metrics HTTP address; "" disables it.
	// Default 127.0.0.1:9464.
	MetricsListen *string `yaml:"metrics_listen"`
	// Store selects the backend: sqlite:///path/vouch.db or postgres://…
	Store string `yaml:"store"`
	// SigningKey is the PEM private key that signs attestations (ECDSA P-256
	// or Ed25519; mode 0600).
	SigningKey string `yaml:"signing_key"`
	// InsecurePlaintext allows plaintext gRPC on a non-loopback address.
	InsecurePlaintext bool `yaml:"insecure_plaintext"`
	// TLS configures the gRPC listener's certificate and client certificates.
	TLS *TLS `yaml:"tls"`
	// Auth configures bearer tokens and client-certificate identities. Without
	// it vouchd serves only on loopback and records callers as "anonymous".
	Auth *Auth `yaml:"auth"`
	// Log configures logging.
	Log Log `yaml:"log"`
	// Verifier names vouch in its attestations.
	Verifier Verifier `yaml:"verifier"`
	// Limits bound requests.
	Limits Limits `yaml:"limits"`
	// Repositories are the APK repositories vouch verifies against.
	Repositories []Repository `yaml:"repositories"`

	// File is the path the configuration was loaded from.
	File string `yaml:"-"`
}

// TLS is the listener's TLS configuration.
type TLS struct {
	Cert     string `yaml:"cert"`      // PEM certificate chain
	Key      string `yaml:"key"`       // PEM private key
	ClientCA string `yaml:"client_ca"` // PEM CA bundle for client certificates (mTLS)
	// RequireClientCert refuses connections without a client certificate
	// signed by ClientCA.
	RequireClientCert bool `yaml:"require_client_cert"`
}

// Auth configures who may call which service.
type Auth struct {
	// TokensFile holds hashed bearer tokens (reloaded on SIGHUP).
	TokensFile string `yaml:"tokens_file"`
	// ClientCertificates maps client-certificate identities to roles. A
	// certificate's identity is its first URI SAN, else its subject common
	// name, else its first DNS SAN.
	ClientCertificates []Identity `yaml:"client_certificates"`
}

// Identity gives roles to a client-certificate identity.
type Identity struct {
	Identity string   `yaml:"identity"`
	Roles    []string `yaml:"roles"`
}

// Roles known to vouchd.
var Roles = []string{"builder", "reader", "admin"}

// Log configures logging.
type Log struct {
	Format string `yaml:"format"` // json (default) or text
	Level  string `yaml:"level"`  // debug, info (default), warn, error
}

// Verifier names vouch in its attestations.
type Verifier struct {
	// ID is the VSA verifier.id URI. Default https://github.com/vouchdev/vouch.
	ID string `yaml:"id"`
	// PolicyURI is the VSA policy.uri; default derived from ID.
	PolicyURI string `yaml:"policy_uri"`
}

// Limits bound requests.
type Limits struct {
	MaxPackages     int `yaml:"max_packages"`      // default 10,000
	MaxControlBytes int `yaml:"max_control_bytes"` // default 64 KiB
	MaxRequestBytes int `yaml:"max_request_bytes"` // default 32 MiB
	// MaxInFlight bounds VerifyPackages calls worked on at once; a call
	// over it waits QueueTimeout for a slot, then fails with
	// RESOURCE_EXHAUSTED. Default 64.
	MaxInFlight int `yaml:"max_in_flight"`
	// QueueTimeout is how long a call waits for a slot. Default 1s.
	QueueTimeout Duration `yaml:"queue_timeout"`
}

// Repository is one APK repository vouch verifies against.
type Repository struct {
	Name          string   `yaml:"name"`
	URL           string   `yaml:"url"`
	Mirrors       []string `yaml:"mirrors"`
	Keys          []string `yaml:"keys"`
	Architectures []string `yaml:"architectures"`
	Refresh       Duration `yaml:"refresh"`
	MaxAge        Duration `yaml:"max_age"`
	History       Duration `yaml:"history"`
	// CABundle is an optional PEM CA bundle for https fetches.
	CABundle string `yaml:"ca_bundle"`
	// Supplier is the SPDX supplier, e.g. "Organization: Wolfi".
	Supplier string `yaml:"supplier"`
	// Distro is the purl namespace, e.g. "wolfi" in pkg:apk/wolfi/…
	Distro string `yaml:"distro"`
	// MaxIndexBytes bounds the decompressed index (gzip bombs). Default 300 MiB.
	MaxIndexBytes int64 `yaml:"max_index_bytes"`
}

// Load reads, parses, defaults and validates the configuration at path.
// Every problem is reported as an *Error in an Errors value naming the file,
// the line where known, the field and what is wrong.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, Errors{{File: path, Msg: "cannot read: " + errors.Unwrap(err).Error()}}
	}
	return Parse(path, data)
}

var yamlLine = regexp.MustCompile(`^line (\d+): (.*)$`)

// Parse is Load on bytes already read; name is used in error messages.
func Parse(name string, data []byte) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, yamlErrors(name, err, nil)
	}
	if len(root.Content) == 0 {
		return nil, Errors{{File: name, Msg: "file is empty"}}
	}
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return nil, yamlErrors(name, err, root.Content[0])
	}
	c.File = name
	c.applyDefaults()
	v := validator{file: name, root: root.Content[0]}
	c.validate(&v)
	if len(v.errs) > 0 {
		return nil, v.errs.sorted()
	}
	return &c, nil
}

func yamlErrors(name string, err error, root *yaml.Node) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		var es Errors
		for _, m := range te.Errors {
			e := &Error{File: name, Msg: m}
			if g := yamlLine.FindStringSubmatch(m); g != nil {
				e.Line, _ = strconv.Atoi(g[1])
				e.Msg = g[2]
				e.Field = pathAt(root, e.Line, "")
				if f, _, ok := strings.Cut(e.Msg, " not found in type "); ok && strings.HasPrefix(f, "field ") {
					e.Msg = "unknown field " + strings.TrimPrefix(f, "field ")
				}
			}
			es = append(es, e)
		}
		return es
	}
	msg := err.Error()
	e := &Error{File: name, Msg: "not valid YAML: " + strings.TrimPrefix(msg, "yaml: ")}
	if g := regexp.MustCompile(`line (\d+)`).FindStringSubmatch(msg); g != nil {
		e.Line, _ = strconv.Atoi(g[1])
	}
	return Errors{e}
}

// pathAt returns the dotted path of the mapping key on line, or "".
func pathAt(n *yaml.Node, line int, prefix string) string {
	if n == nil {
		return ""
	}
	join := func(k string) string {
		if prefix == "" {
			return k
		}
		return prefix + "." + k
	}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if k.Line == line {
				return join(k.Value)
			}
			if p := pathAt(val, line, join(k.Value)); p != "" {
				return p
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			p := fmt.Sprintf("%s[%d]", prefix, i)
			if c.Kind == yaml.ScalarNode && c.Line == line {
				return p
			}
			if q := pathAt(c, line, p); q != "" {
				return q
			}
		}
	}
	return ""
}

func (c *Config) applyDefaults() {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.MetricsListen == nil {
		s := DefaultMetricsListen
		c.MetricsListen = &s
	}
	if c.Log.Format == "" {
		c.Log.Format = DefaultLogFormat
	}
	if c.Log.Level == "" {
		c.Log.Level = DefaultLogLevel
	}
	if c.Verifier.ID == "" {
		c.Verifier.ID = DefaultVerifierID
	}
	if c.Verifier.PolicyURI == "" {
		c.Verifier.PolicyURI = strings.TrimSuffix(c.Verifier.ID, "/") + "/policy/apk-index-v1"
	}
	if c.Limits.MaxPackages == 0 {
		c.Limits.MaxPackages = DefaultMaxPackages
	}
	if c.Limits.MaxControlBytes == 0 {
		c.Limits.MaxControlBytes = DefaultMaxControlBytes
	}
	if c.Limits.MaxRequestBytes == 0 {
		c.Limits.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if c.Limits.MaxInFlight == 0 {
		c.Limits.MaxInFlight = DefaultMaxInFlight
	}
	if c.Limits.QueueTimeout == 0 {
		c.Limits.QueueTimeout = Duration(DefaultQueueTimeout)
	}
	for i := range c.Repositories {
		r := &c.Repositories[i]
		if r.Refresh == 0 {
			r.Refresh = Duration(DefaultRefresh)
		}
		if r.MaxAge == 0 {
			r.MaxAge = Duration(DefaultMaxAge)
		}
		if r.History == 0 {
			r.History = Duration(DefaultHistory)
		}
		if r.MaxIndexBytes == 0 {
			r.MaxIndexBytes = DefaultMaxIndexBytes
		}
		if r.Distro == "" {
			r.Distro = r.Name
		}
	}
}

// Revalidate checks a Config again after a caller changed fields (for
// example a command-line override). It returns c for chaining.
func Revalidate(c *Config) (*Config, error) {
	v := validator{file: c.File}
	c.validate(&v)
	if len(v.errs) > 0 {
		return nil, v.errs
	}
	return c, nil
}

// validator collects errors with the line of the offending YAML node.
type validator struct {
	file string
	root *yaml.Node
	errs Errors
}

// errf records a problem at field (a dotted path with [i] indexes).
func (v *validator) errf(field, format string, args ...any) {
	v.errs = append(v.errs, &Error{File: v.file, Line: v.line(field), Field: field, Msg: fmt.Sprintf(format, args...)})
}

// line finds the line of the node at a dotted path, or of its nearest
// existing parent.
func (v *validator) line(field string) int {
	n := v.root
	best := 0
	for _, part := range strings.Split(field, ".") {
		key, idx := part, -1
		if i := strings.IndexByte(part, '['); i >= 0 && strings.HasSuffix(part, "]") {
			key = part[:i]
			idx, _ = strconv.Atoi(part[i+1 : len(part)-1])
		}
		next := mapValue(n, key)
		if next == nil {
			return best
		}
		best = next.Line
		if idx >= 0 {
			if next.Kind != yaml.SequenceNode || idx >= len(next.Content) {
				return best
			}
			next = next.Content[idx]
			best = next.Line
		}
		n = next
	}
	return best
}

func mapValue(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

var (
	nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)
	archRE = regexp.MustCompile(`^[a-z0-9_]{1,32}$`)
)

func (c *Config) validate(v *validator) {
	loopback := checkAddr(v, "listen", c.Listen)
	if *c.MetricsListen != "" {
		checkAddr(v, "metrics_listen", *c.MetricsListen)
	}
	switch {
	case c.Store == "":
		v.errf("store", "required: sqlite:///path/to/vouch.db or postgres://user@host/db")
	case strings.HasPrefix(c.Store, "sqlite://"):
		if p := strings.TrimPrefix(c.Store, "sqlite://"); !strings.HasPrefix(p, "/") {
			v.errf("store", "%q: a sqlite URL needs an absolute path (sqlite:///var/lib/vouch/vouch.db)", c.Store)
		}
	case strings.HasPrefix(c.Store, "postgres://"), strings.HasPrefix(c.Store, "postgresql://"):
		if _, err := url.Parse(c.Store); err != nil {
			v.errf("store", "not a valid postgres URL")
		}
	default:
		v.errf("store", "%q: unknown scheme; want sqlite:///path or postgres://…", redactURL(c.Store))
	}
	if c.SigningKey == "" {
		v.errf("signing_key", "required: path to the PEM private key that signs attestations (create one with `vouch keys generate`)")
	} else {
		checkFile(v, "signing_key", c.SigningKey)
	}
	if c.TLS != nil {
		if c.TLS.Cert == "" {
			v.errf("tls.cert", "required when tls is set")
		} else {
			checkFile(v, "tls.cert", c.TLS.Cert)
		}
		if c.TLS.Key == "" {
			v.errf("tls.key", "required when tls is set")
		} else {
			checkFile(v, "tls.key", c.TLS.Key)
		}
		if c.TLS.ClientCA != "" {
			checkFile(v, "tls.client_ca", c.TLS.ClientCA)
		} else if c.TLS.RequireClientCert {
			v.errf("tls.require_client_cert", "needs tls.client_ca")
		}
	}
	if !loopback {
		if c.TLS == nil && !c.InsecurePlaintext {
			v.errf("listen", "%q is not a loopback address: configure tls, or set insecure_plaintext: true", c.Listen)
		}
		if c.Auth == nil {
			v.errf("listen", "%q is not a loopback address: configure auth (without it vouchd serves only on loopback)", c.Listen)
		}
	}
	if c.Auth != nil {
		if c.Auth.TokensFile == "" && len(c.Auth.ClientCertificates) == 0 {
			v.errf("auth", "set tokens_file or client_certificates (or remove auth to serve anonymously on loopback)")
		}
		if c.Auth.TokensFile != "" {
			checkFile(v, "auth.tokens_file", c.Auth.TokensFile)
		}
		if len(c.Auth.ClientCertificates) > 0 && (c.TLS == nil || c.TLS.ClientCA == "") {
			v.errf("auth.client_certificates", "needs tls.client_ca to verify client certificates")
		}
		for i, id := range c.Auth.ClientCertificates {
			f := fmt.Sprintf("auth.client_certificates[%d]", i)
			if id.Identity == "" {
				v.errf(f+".identity", "required")
			}
			checkRoles(v, f+".roles", id.Roles)
		}
	}
	switch c.Log.Format {
	case "json", "text":
	default:
		v.errf("log.format", "%q: want json or text", c.Log.Format)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		v.errf("log.level", "%q: want debug, info, warn or error", c.Log.Level)
	}
	if u, err := url.Parse(c.Verifier.ID); err != nil || u.Scheme == "" {
		v.errf("verifier.id", "%q: want an absolute URI", c.Verifier.ID)
	}
	if c.Limits.MaxPackages < 0 || c.Limits.MaxPackages > 1_000_000 {
		v.errf("limits.max_packages", "%d: want 1..1000000", c.Limits.MaxPackages)
	}
	if c.Limits.MaxControlBytes < 0 || c.Limits.MaxControlBytes > 16<<20 {
		v.errf("limits.max_control_bytes", "%d: want 1..16777216", c.Limits.MaxControlBytes)
	}
	if c.Limits.MaxRequestBytes < 0 || c.Limits.MaxRequestBytes > 1<<30 {
		v.errf("limits.max_request_bytes", "%d: want 1..1073741824", c.Limits.MaxRequestBytes)
	}
	if c.Limits.MaxInFlight < 0 || c.Limits.MaxInFlight > 100_000 {
		v.errf("limits.max_in_flight", "%d: want 1..100000", c.Limits.MaxInFlight)
	}
	if d := c.Limits.QueueTimeout.Std(); d < 0 || d > 10*time.Minute {
		v.errf("limits.queue_timeout", "%s: want a duration from 1ms to 10m", d)
	}
	if len(c.Repositories) == 0 {
		v.errf("repositories", "required: at least one repository")
	}
	names := map[string]int{}
	for i := range c.Repositories {
		c.Repositories[i].validate(v, fmt.Sprintf("repositories[%d]", i), names, i)
	}
}

func (r *Repository) validate(v *validator, f string, names map[string]int, i int) {
	switch {
	case r.Name == "":
		v.errf(f+".name", "required")
	case !nameRE.MatchString(r.Name):
		v.errf(f+".name", "%q: want lower-case letters, digits, '.', '_' or '-' (at most 63)", r.Name)
	default:
		if j, dup := names[r.Name]; dup {
			v.errf(f+".name", "%q is already the name of repositories[%d]", r.Name, j)
		}
		names[r.Name] = i
	}
	if r.URL == "" {
		v.errf(f+".url", "required: the repository's canonical URL, e.g. https://packages.wolfi.dev/os")
	} else {
		checkRepoURL(v, f+".url", r.URL)
	}
	for j, m := range r.Mirrors {
		checkRepoURL(v, fmt.Sprintf("%s.mirrors[%d]", f, j), m)
	}
	if len(r.Keys) == 0 {
		v.errf(f+".keys", "required: at least one pinned public key file (PEM) of this repository")
	}
	for j, k := range r.Keys {
		checkFile(v, fmt.Sprintf("%s.keys[%d]", f, j), k)
	}
	if len(r.Architectures) == 0 {
		v.errf(f+".architectures", "required: e.g. [x86_64, aarch64]")
	}
	seen := map[string]bool{}
	for j, a := range r.Architectures {
		af := fmt.Sprintf("%s.architectures[%d]", f, j)
		switch {
		case !archRE.MatchString(a):
			v.errf(af, "%q is not an architecture name (e.g. x86_64, aarch64)", a)
		case a == "noarch":
			v.errf(af, "noarch is not an index architecture: repositories list noarch packages in each arch's index")
		case seen[a]:
			v.errf(af, "%q is listed twice", a)
		}
		seen[a] = true
	}
	if r.Refresh.Std() < time.Second {
		v.errf(f+".refresh", "%s: want at least 1s", r.Refresh.Std())
	}
	if r.MaxAge.Std() < r.Refresh.Std() {
		v.errf(f+".max_age", "%s is shorter than refresh (%s): the index would turn stale between refreshes", r.MaxAge.Std(), r.Refresh.Std())
	}
	if r.History.Std() < 0 {
		v.errf(f+".history", "must not be negative")
	}
	if r.CABundle != "" {
		checkFile(v, f+".ca_bundle", r.CABundle)
	}
	if r.MaxIndexBytes < 1<<20 || r.MaxIndexBytes >= 4<<30 {
		v.errf(f+".max_index_bytes", "%d: want at least 1 MiB (1048576) and less than 4 GiB (4294967296)", r.MaxIndexBytes)
	}
	if err := attest.CheckSupplier(r.Supplier); err != nil {
		v.errf(f+".supplier", "%v: want \"Organization: <name>\", \"Person: <name>\" or a name", err)
	}
	if r.Distro != "" && !nameRE.MatchString(r.Distro) {
		v.errf(f+".distro", "%q: want a purl namespace such as wolfi or alpine", r.Distro)
	}
}

func checkRepoURL(v *validator, field, s string) {
	u, err := url.Parse(s)
	if err != nil {
		v.errf(field, "%q is not a URL", s)
		return
	}
	switch u.Scheme {
	case "https", "http":
		if u.Host == "" {
			v.errf(field, "%q has no host", s)
		}
	case "file":
		if u.Path == "" || !strings.HasPrefix(u.Path, "/") {
			v.errf(field, "%q: a file URL needs an absolute path (file:///srv/repo)", s)
		}
	default:
		v.errf(field, "%q: want an https, http or file URL", s)
	}
	if u.User != nil {
		v.errf(field, "credentials in repository URLs are not supported")
	}
}

func checkRoles(v *validator, field string, roles []string) {
	if len(roles) == 0 {
		v.errf(field, "required: one or more of builder, reader, admin")
	}
	for _, r := range roles {
		ok := false
		for _, k := range Roles {
			ok = ok || r == k
		}
		if !ok {
			v.errf(field, "unknown role %q: want builder, reader or admin", r)
		}
	}
}

func checkFile(v *validator, field, path string) {
	fi, err := os.Stat(path)
	switch {
	case err != nil:
		v.errf(field, "%s: %v", path, errors.Unwrap(err))
	case fi.IsDir():
		v.errf(field, "%s is a directory, want a file", path)
	}
}

// checkAddr validates host:port and reports whether host is a loopback address.
func checkAddr(v *validator, field, addr string) bool {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		v.errf(field, "%q: want host:port, e.g. 127.0.0.1:7443", addr)
		return true
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		v.errf(field, "%q: port must be 0..65535", addr)
	}
	return IsLoopback(host)
}

// IsLoopback reports whether host is "localhost" or a loopback IP.
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil && u.User != nil {
		u.User = url.User("redacted")
		return u.String()
	}
	return s
}

package index

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vouchdev/vouch/apk"
	"github.com/vouchdev/vouch/store"
)

// Outcome is what Lookup found.
type Outcome int

const (
	// NotFound: neither the current, fresh snapshot nor the store's
	// history lists (name, version, arch). Checksum is zero. A store
	// failure while reading the history also answers NotFound (fail
	// closed).
	NotFound Outcome = iota
	// Current: the current, fresh snapshot lists the entry.
	Current
	// History: the entry left the index; Checksum is the one it was listed
	// with, LeftAt says when it left, Expired whether that is longer ago
	// than the repository's history window.
	History
	// Stale: the arch's last successful fetch or 304 is older than MaxAge.
	// Nothing is answered from a stale snapshot (fail closed).
	Stale
	// UnknownRepository: the repository or the arch is not configured.
	UnknownRepository
	// NoSnapshot: the arch is configured but no verified snapshot is
	// loaded yet.
	NoSnapshot
)

var outcomeNames = [...]string{"not_found", "current", "history", "stale", "unknown_repository", "no_snapshot"}

// String returns a lower-case name such as "current".
func (o Outcome) String() string {
	if o >= 0 && int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return fmt.Sprintf("outcome(%d)", int(o))
}

// SnapshotInfo identifies the verified snapshot that decided a lookup.
type SnapshotInfo struct {
	ID int64 // store id
	// IndexURL is the canonical <url>/<arch>/APKINDEX.tar.gz, whatever
	// source (canonical or mirror) delivered the file.
	IndexURL string
	SHA256   string   // lower-case hex of the whole signed file
	Keys     []string // names of the pinned keys whose signatures verified; read-only
	// FetchedAt is when this file was downloaded; ConfirmedAt the last time
	// a fetch or 304 confirmed it (freshness counts from there).
	FetchedAt   time.Time
	ConfirmedAt time.Time
}

// Lookup is the answer of Cache.Lookup. Checksum, License and Origin are
// set only for Current and History (and for an Expired History).
type Lookup struct {
	Outcome  Outcome
	Checksum apk.Checksum // checksum listed for (name, version, arch)
	// LeftAt (History): when the entry left the index.
	LeftAt time.Time
	// Expired (History): it left longer ago than the history window; the
	// server answers NOT_IN_INDEX and says why. Outcome stays History.
	Expired bool
	// Snapshot is the snapshot that decided (zero for UnknownRepository and
	// NoSnapshot).
	Snapshot SnapshotInfo

	// For Current: the snapshot's index and the key, so that LicenseOrigin
	// reads the same snapshot later without the lookup paying for it.
	idx                 *apk.Index
	name, version, arch string
}

// LicenseOrigin returns the L: and o: of a Current entry, read from the
// snapshot that decided the lookup ("" for other outcomes). Verification
// needs only the checksum; attestations record these, so they are read only
// when asked for. They share memory with the snapshot: a caller that keeps
// them beyond the request should strings.Clone them, or the whole snapshot
// stays in memory.
func (l Lookup) LicenseOrigin() (license, origin string) {
	if l.idx == nil {
		return "", ""
	}
	_, license, origin, _ = l.idx.Attested(l.name, l.version, l.arch)
	return license, origin
}

// Cache keeps the verified index snapshots of the configured repositories.
// All methods are safe for concurrent use. Lookups never block on a
// refresh: each arch's snapshot is swapped in atomically once verified and
// persisted.
type Cache struct {
	cfg     Config
	now     func() time.Time
	repos   []*repository
	byName  map[string]*repository
	byURL   map[string]*repository // normalized URL (canonical and mirrors)
	metrics *metrics

	parses atomic.Int64 // indexes verified+parsed (tests, metrics)
}

type repository struct {
	cfg    RepositoryConfig
	client *http.Client
	canon  string // normalized canonical URL
	srcs   []string
	archs  map[string]*stream
	order  []*stream
}

// stream is one (repository, arch).
type stream struct {
	repo *repository
	arch string

	cur       atomic.Pointer[snapshot]
	confirmed atomic.Int64 // unix nanos of the last success (fetch, 304, store load of a confirmation)

	// sem serialises refreshes and store loads of this stream.
	sem chan struct{}

	mu          sync.Mutex // guards the fields below
	lastAttempt time.Time
	lastSuccess time.Time
	lastErr     error
	lastOutcome RefreshOutcome
	refusedSHA  map[string]bool // refused files already recorded as events
	failKey     string          // last refresh failure recorded as an event
}

// snapshot is an immutable verified index and its metadata.
type snapshot struct {
	idx          *apk.Index
	info         SnapshotInfo
	entries      int
	etag         string
	lastModified string
	source       string // URL it was downloaded from ("" when loaded from the store)
}

// New validates cfg and builds a Cache. For every configured (repository,
// arch) it loads the latest snapshot from the store and verifies it again
// with the repository's pinned keys, without any network access, so the
// cache answers at once after a restart. A stored snapshot that fails to
// verify (a key was unpinned, the file was altered) is not loaded; the
// arch then starts without a snapshot and its error shows in Status. Only
// invalid configuration, metric registration and store read failures
// (other than "not found") fail New.
func New(ctx context.Context, cfg Config) (*Cache, error) {
	cfg.Repositories = append([]RepositoryConfig(nil), cfg.Repositories...)
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Cache{
		cfg:    cfg,
		now:    cfg.Clock,
		byName: map[string]*repository{},
		byURL:  map[string]*repository{},
	}
	for _, rc := range cfg.Repositories {
		r := &repository{cfg: rc, archs: map[string]*stream{}}
		r.canon, _ = normalizeURL(rc.URL)
		r.srcs = append([]string{strings.TrimRight(rc.URL, "/")}, trimAll(rc.Mirrors)...)
		client, err := c.httpClient(rc)
		if err != nil {
			return nil, err
		}
		r.client = client
		for _, a := range rc.Architectures {
			s := &stream{repo: r, arch: a, sem: make(chan struct{}, 1), refusedSHA: map[string]bool{}}
			r.archs[a] = s
			r.order = append(r.order, s)
		}
		c.repos = append(c.repos, r)
		c.byName[rc.Name] = r
		for _, u := range append([]string{rc.URL}, rc.Mirrors...) {
			k, _ := normalizeURL(u)
			c.byURL[k] = r
		}
	}
	m, err := newMetrics(cfg.Registerer, c)
	if err != nil {
		return nil, err
	}
	c.metrics = m
	for _, r := range c.repos {
		for _, s := range r.order {
			if _, err := c.loadLatest(ctx, s); err != nil && errors.Is(err, ErrStore) {
				return nil, err
			}
		}
	}
	return c, nil
}

func trimAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strings.TrimRight(s, "/")
	}
	return out
}

// Repository returns the configuration of a repository (after defaults).
func (c *Cache) Repository(name string) (RepositoryConfig, bool) {
	r, ok := c.byName[name]
	if !ok {
		return RepositoryConfig{}, false
	}
	return r.cfg, true
}

// Repositories returns the configured repository names in configuration
// order.
func (c *Cache) Repositories() []string {
	out := make([]string, len(c.repos))
	for i, r := range c.repos {
		out[i] = r.cfg.Name
	}
	return out
}

// Resolve maps the repository URL a builder used to the configured
// repository name: the canonical URL or any mirror, with or without a
// trailing slash or a "/<arch>" suffix naming one of the repository's
// architectures. Scheme and host compare case-insensitively, default ports
// are ignored; the path compares exactly. Anything else is not ok (the
// server answers UNKNOWN_REPOSITORY).
func (c *Cache) Resolve(builderURL string) (repo string, ok bool) {
	k, err := normalizeURL(builderURL)
	if err != nil {
		return "", false
	}
	if r, ok := c.byURL[k]; ok {
		return r.cfg.Name, true
	}
	i := strings.LastIndexByte(k, '/')
	if i < 0 {
		return "", false
	}
	base, last := k[:i], k[i+1:]
	r, ok := c.byURL[base]
	if !ok {
		return "", false
	}
	if _, ok := r.archs[last]; !ok {
		return "", false
	}
	return r.cfg.Name, true
}

func (c *Cache) stream(repo, arch string) (*stream, error) {
	r, ok := c.byName[repo]
	if !ok {
		return nil, fmt.Errorf("%w: repository %q", ErrUnknownRepository, repo)
	}
	s, ok := r.archs[arch]
	if !ok {
		return nil, fmt.Errorf("%w: arch %q of repository %q", ErrUnknownRepository, arch, repo)
	}
	return s, nil
}

// fresh reports whether s was confirmed within MaxAge of now.
func (s *stream) fresh(now time.Time) bool {
	return now.UnixNano()-s.confirmed.Load() <= int64(s.repo.cfg.MaxAge)
}

// Lookup answers whether (name, version) is listed in the verified index
// of (repo, arch). The current-snapshot path does no I/O and takes well
// under a microsecond; when the entry is not current, the store is asked
// for its history (one indexed query). A store failure on that path is
// returned as NotFound with the current snapshot: fail closed.
//
// Order: UnknownRepository, NoSnapshot, Stale, Current, History, NotFound.
func (c *Cache) Lookup(ctx context.Context, repo, arch, name, version string) Lookup {
	r, ok := c.byName[repo]
	if !ok {
		return Lookup{Outcome: UnknownRepository}
	}
	s, ok := r.archs[arch]
	if !ok {
		return Lookup{Outcome: UnknownRepository}
	}
	snap := s.cur.Load()
	if snap == nil {
		return Lookup{Outcome: NoSnapshot}
	}
	now := c.now()
	if !s.fresh(now) {
		return Lookup{Outcome: Stale, Snapshot: s.info(snap)}
	}
	if sum, ok := snap.idx.ChecksumOf(name, version, arch); ok {
		return Lookup{
			Outcome:  Current,
			Checksum: sum,
			Snapshot: s.info(snap),
			idx:      snap.idx, name: name, version: version, arch: arch,
		}
	}
	l := Lookup{Outcome: NotFound, Snapshot: s.info(snap)}
	recs, err := c.cfg.Store.EntryHistory(ctx, repo, arch, name, version)
	if err != nil {
		return l
	}
	// The most recent departure decides (after an accepted equivocation
	// the newer checksum is the one to verify against).
	var best *store.EntryRecord
	for i := range recs {
		rec := &recs[i]
		if rec.Current() || rec.Checksum.IsZero() {
			continue
		}
		if best == nil || !rec.LeftAt.Before(best.LeftAt) {
			best = rec
		}
	}
	if best == nil {
		return l
	}
	l.Outcome = History
	l.Checksum = best.Checksum
	l.LeftAt = best.LeftAt
	l.Expired = now.Sub(best.LeftAt) > r.cfg.History
	return l
}

// info returns the snapshot's info with the stream's confirmation time.
func (s *stream) info(snap *snapshot) SnapshotInfo {
	in := snap.info
	if t := s.confirmed.Load(); t > in.ConfirmedAt.UnixNano() {
		in.ConfirmedAt = time.Unix(0, t).UTC()
	}
	return in
}

// Ready reports whether every configured (repository, arch) has a verified
// snapshot loaded (fresh or not). The gRPC health check uses it.
func (c *Cache) Ready() bool {
	for _, r := range c.repos {
		for _, s := range r.order {
			if s.cur.Load() == nil {
				return false
			}
		}
	}
	return true
}

// Freshness is the state of an arch's snapshot.
type Freshness int

const (
	// NoSnapshotYet: nothing verified is loaded.
	NoSnapshotYet Freshness = iota
	// Fresh: confirmed within MaxAge.
	Fresh
	// StaleSnapshot: loaded, but not confirmed within MaxAge.
	StaleSnapshot
)

// String returns "no_snapshot", "fresh" or "stale".
func (f Freshness) String() string {
	switch f {
	case Fresh:
		return "fresh"
	case StaleSnapshot:
		return "stale"
	default:
		return "no_snapshot"
	}
}

// RepositoryStatus is the state of one (repository, arch).
type RepositoryStatus struct {
	Repository, Arch string
	URL              string // canonical repository URL
	Freshness        Freshness
	Snapshot         SnapshotInfo // zero with NoSnapshotYet
	Entries          int
	Description      string // the index's DESCRIPTION
	Source           string // URL the snapshot was downloaded from, "" when loaded from the store
	// LastSuccess is the last fetch or 304 that confirmed the snapshot;
	// StaleAfter = LastSuccess + MaxAge.
	LastSuccess time.Time
	StaleAfter  time.Time
	LastAttempt time.Time
	LastOutcome RefreshOutcome
	LastError   error // of the last attempt; nil when it succeeded
	// Events are the most recent events of this arch from the store,
	// newest first; EventsError is set when they could not be read.
	Events      []store.Event
	EventsError error
}

// Status reports the state of every arch of repo ("" = every repository),
// in configuration order; empty for an unknown repository. It reads recent
// events from the store; everything else comes from memory.
func (c *Cache) Status(ctx context.Context, repo string) []RepositoryStatus {
	var out []RepositoryStatus
	now := c.now()
	for _, r := range c.repos {
		if repo != "" && r.cfg.Name != repo {
			continue
		}
		for _, s := range r.order {
			st := RepositoryStatus{Repository: r.cfg.Name, Arch: s.arch, URL: r.cfg.URL}
			if snap := s.cur.Load(); snap != nil {
				st.Snapshot = s.info(snap)
				st.Entries = snap.entries
				st.Description = snap.idx.Description
				st.Source = snap.source
				st.Freshness = StaleSnapshot
				if s.fresh(now) {
					st.Freshness = Fresh
				}
			}
			if t := s.confirmed.Load(); t != 0 {
				st.LastSuccess = time.Unix(0, t).UTC()
				st.StaleAfter = st.LastSuccess.Add(r.cfg.MaxAge)
			}
			s.mu.Lock()
			st.LastAttempt, st.LastOutcome, st.LastError = s.lastAttempt, s.lastOutcome, s.lastErr
			s.mu.Unlock()
			st.Events, _, st.EventsError = c.cfg.Store.ListEvents(ctx, store.EventQuery{
				Repository: r.cfg.Name, Arch: s.arch, PageSize: c.cfg.EventsInStatus,
			})
			out = append(out, st)
		}
	}
	return out
}

// AcceptEquivocation records an operator's decision that (name, version)
// of (repo, arch) may from now on be listed with checksum sum, although a
// different checksum was seen before. The next refresh then takes an index
// listing sum (other equivocations in it are still refused). reason and
// who are kept in the event. It returns the recorded event. Idempotent in
// effect (a second acceptance records a second event).
func (c *Cache) AcceptEquivocation(ctx context.Context, repo, arch, name, version string, sum apk.Checksum, reason, who string) (store.Event, error) {
	if _, err := c.stream(repo, arch); err != nil {
		return store.Event{}, fmt.Errorf("accepting equivocation: %w", err)
	}
	switch {
	case name == "" || version == "":
		return store.Event{}, fmt.Errorf("accepting equivocation: %w: name and version are required", ErrInvalidArgument)
	case sum.IsZero() || len(sum.Digest) != sum.Alg.Size():
		return store.Event{}, fmt.Errorf("accepting equivocation: %w: checksum is required", ErrInvalidArgument)
	case strings.TrimSpace(reason) == "":
		return store.Event{}, fmt.Errorf("accepting equivocation: %w: a reason is required", ErrInvalidArgument)
	case strings.TrimSpace(who) == "":
		return store.Event{}, fmt.Errorf("accepting equivocation: %w: who accepts it is required", ErrInvalidArgument)
	}
	ev := store.Event{
		Kind: store.EventEquivocationAccepted, Repository: repo, Arch: arch, Time: c.now().UTC(),
		Name: name, Version: version, OtherChecksum: sum,
		Detail: fmt.Sprintf("accepted by %s: %s", who, reason),
	}
	if recs, err := c.cfg.Store.EntryHistory(ctx, repo, arch, name, version); err == nil {
		for i := len(recs) - 1; i >= 0; i-- {
			if !recs[i].Checksum.Equal(sum) {
				ev.Checksum = recs[i].Checksum
				break
			}
		}
	}
	id, err := c.cfg.Store.AppendEvent(ctx, ev)
	if err != nil {
		return store.Event{}, fmt.Errorf("accepting equivocation: %w: %w", ErrStore, err)
	}
	ev.ID = id
	c.metrics.event(repo, arch, ev.Kind)
	return ev, nil
}

// canonicalIndexURL is <canonical>/<arch>/APKINDEX.tar.gz.
func (s *stream) canonicalIndexURL() string {
	return strings.TrimRight(s.repo.cfg.URL, "/") + "/" + s.arch + "/APKINDEX.tar.gz"
}

func hexSHA256(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

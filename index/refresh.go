package index

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/vouchdev/vouch/apk"
	"github.com/vouchdev/vouch/store"
)

// RefreshOutcome is what one refresh of an arch did.
type RefreshOutcome int

const (
	// Failed: no new snapshot; Err says why (ErrFetch, ErrTimeout,
	// ErrTooLarge, ErrVerify, ErrStore, ErrBusy). The previous snapshot keeps
	// serving.
	Failed RefreshOutcome = iota
	// Updated: a new verified snapshot was persisted and swapped in.
	Updated
	// NotModified: the source answered 304 or served the current file
	// byte for byte; the snapshot is confirmed fresh and nothing was parsed.
	NotModified
	// LoadedFromStore: another replica refreshed meanwhile; its snapshot
	// (or confirmation) was loaded from the store and verified.
	LoadedFromStore
	// Refused: a validly signed index was refused as a rollback or an
	// equivocation (Err wraps ErrRollback or ErrEquivocation); events were
	// recorded and the previous snapshot keeps serving.
	Refused
)

var refreshNames = [...]string{"failed", "updated", "not_modified", "loaded_from_store", "refused"}

// String returns a lower-case name such as "not_modified".
func (o RefreshOutcome) String() string {
	if o >= 0 && int(o) < len(refreshNames) {
		return refreshNames[o]
	}
	return fmt.Sprintf("refresh_outcome(%d)", int(o))
}

// RefreshResult is the result of refreshing one arch.
type RefreshResult struct {
	Arch    string
	Outcome RefreshOutcome
	// Err is set with Failed and Refused. With several sources it joins
	// each source's error (errors.Is matches any of them). It may also be
	// set with NotModified when the confirmation could not be persisted.
	Err     error
	SHA256  string // of the snapshot serving after the refresh ("" when none)
	Entries int    // entries of that snapshot
}

// Refresh refreshes (repo, arch) now, or every arch of repo when arch is
// "". It waits for a refresh of the same arch already running in this
// process. The returned error is non-nil only when the repository or arch
// is not configured (ErrUnknownRepository); per-arch failures are in the
// results. Safe for concurrent use.
func (c *Cache) Refresh(ctx context.Context, repo, arch string) ([]RefreshResult, error) {
	r, ok := c.byName[repo]
	if !ok {
		return nil, fmt.Errorf("refreshing: %w: repository %q", ErrUnknownRepository, repo)
	}
	streams := r.order
	if arch != "" {
		s, ok := r.archs[arch]
		if !ok {
			return nil, fmt.Errorf("refreshing: %w: arch %q of repository %q", ErrUnknownRepository, arch, repo)
		}
		streams = []*stream{s}
	}
	out := make([]RefreshResult, 0, len(streams))
	for _, s := range streams {
		out = append(out, c.refreshStream(ctx, s))
	}
	return out, nil
}

// Run refreshes every (repository, arch) every Refresh interval (±10%
// jitter; the first refresh is due when the loaded snapshot's
// confirmation is one interval old, within 5 s after start when that is
// overdue, and within 250 ms when nothing is loaded) and follows snapshots other replicas write to the store
// (WatchSnapshots, plus polling every PollInterval). It returns nil once
// ctx is done and all its goroutines have stopped. Call it once.
func (c *Cache) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, r := range c.repos {
		for _, s := range r.order {
			wg.Go(func() { c.loop(ctx, s) })
		}
	}
	wg.Go(func() { c.follow(ctx) })
	wg.Wait()
	return nil
}

func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return d - d/10 + time.Duration(rand.Int64N(int64(d/5)+1))
}

func (c *Cache) loop(ctx context.Context, s *stream) {
	every := s.repo.cfg.Refresh
	var first time.Duration
	if t := s.confirmed.Load(); t != 0 && s.cur.Load() != nil {
		first = time.Duration(t) + every - time.Duration(c.now().UnixNano())
	}
	switch {
	case s.cur.Load() == nil:
		// Nothing to serve yet: fetch at once (a little jitter spreads
		// replicas that start together; the store's refresh lock lets one
		// of them fetch).
		first = time.Duration(rand.Int64N(int64(min(every/10, 250*time.Millisecond)) + 1))
	case first <= 0:
		first = time.Duration(rand.Int64N(int64(min(every/10, 5*time.Second)) + 1))
	}
	timer := time.NewTimer(first)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		c.refreshStream(ctx, s)
		timer.Reset(jitter(every))
	}
}

// follow loads snapshots and confirmations written by other replicas.
func (c *Cache) follow(ctx context.Context) {
	notices, err := c.cfg.Store.WatchSnapshots(ctx)
	if err != nil {
		notices = nil // poll only
	}
	tick := time.NewTicker(c.cfg.PollInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case n, ok := <-notices:
			if !ok {
				notices = nil
				continue
			}
			if s, err := c.stream(n.Repository, n.Arch); err == nil {
				c.syncFromStore(ctx, s, n.ID)
			}
		case <-tick.C:
			for _, r := range c.repos {
				for _, s := range r.order {
					c.syncFromStore(ctx, s, 0)
				}
			}
		}
	}
}

// syncFromStore loads a newer snapshot, or a newer confirmation, of s from
// the store unless a refresh of s is running (it syncs itself).
func (c *Cache) syncFromStore(ctx context.Context, s *stream, id int64) {
	if cur := s.cur.Load(); id != 0 && cur != nil && cur.info.ID >= id {
		return
	}
	select {
	case s.sem <- struct{}{}:
	default:
		return
	}
	defer func() { <-s.sem }()
	if _, err := c.loadLatest(ctx, s); err != nil {
		s.mu.Lock()
		s.lastErr = err
		s.mu.Unlock()
	}
}

// loadLatest loads the store's latest snapshot of s when it is newer than
// the one serving (verifying it again with the pinned keys), and adopts a
// newer confirmation time. It reports whether a snapshot was swapped in.
// Callers hold s.sem, except New (single-threaded).
func (c *Cache) loadLatest(ctx context.Context, s *stream) (bool, error) {
	repo, arch := s.repo.cfg.Name, s.arch
	id, err := c.cfg.Store.LatestSnapshotID(ctx, repo, arch)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("loading %s/%s from the store: %w: %w", repo, arch, ErrStore, err)
	}
	cur := s.cur.Load()
	if cur != nil && id <= cur.info.ID {
		if id == cur.info.ID {
			meta, err := c.cfg.Store.Snapshot(ctx, id)
			if err != nil {
				return false, fmt.Errorf("loading %s/%s from the store: %w: %w", repo, arch, ErrStore, err)
			}
			s.confirm(meta.ConfirmedAt)
		}
		return false, nil
	}
	sn, err := c.cfg.Store.LatestSnapshot(ctx, repo, arch)
	if err != nil {
		return false, fmt.Errorf("loading %s/%s from the store: %w: %w", repo, arch, ErrStore, err)
	}
	if cur != nil && sn.ID <= cur.info.ID {
		return false, nil
	}
	if got := hexSHA256(sn.Raw); got != strings.ToLower(sn.SHA256) {
		return false, fmt.Errorf("loading %s/%s snapshot %d: %w: stored file has sha256 %s, recorded %s", repo, arch, sn.ID, ErrVerify, got, sn.SHA256)
	}
	idx, err := c.verify(s, sn.Raw)
	if err != nil {
		err = fmt.Errorf("loading %s/%s snapshot %d from the store: %w", repo, arch, sn.ID, err)
		s.mu.Lock()
		s.lastErr = err
		s.mu.Unlock()
		return false, err
	}
	snap := &snapshot{
		idx: idx,
		info: SnapshotInfo{
			ID: sn.ID, IndexURL: s.canonicalIndexURL(), SHA256: strings.ToLower(sn.SHA256),
			Keys: idx.VerifiedKeys(), FetchedAt: sn.FetchedAt, ConfirmedAt: sn.ConfirmedAt,
		},
		entries: sn.EntryCount, etag: sn.ETag, lastModified: sn.LastModified,
	}
	s.cur.Store(snap)
	s.confirm(sn.ConfirmedAt)
	return true, nil
}

// confirm moves the stream's last confirmation forward to t.
func (s *stream) confirm(t time.Time) {
	n := t.UnixNano()
	for {
		old := s.confirmed.Load()
		if n <= old || s.confirmed.CompareAndSwap(old, n) {
			return
		}
	}
}

// verify checks the file's signature with the repository's pinned keys and
// parses it (apk.LoadIndex). Errors wrap ErrVerify (and ErrTooLarge for
// size limits).
func (c *Cache) verify(s *stream, raw []byte) (*apk.Index, error) {
	start := time.Now()
	c.parses.Add(1)
	idx, err := apk.LoadIndex(raw, s.repo.cfg.Keys, apk.IndexOptions{
		MaxIndexSize:        max(c.cfg.MaxBodyBytes, int64(len(raw))),
		MaxDecompressedSize: s.repo.cfg.MaxIndexBytes,
	})
	c.metrics.verified(s, time.Since(start), err == nil)
	if err != nil {
		if errors.Is(err, apk.ErrIndexTooLarge) {
			return nil, fmt.Errorf("%w: %w: %w", ErrVerify, ErrTooLarge, err)
		}
		return nil, fmt.Errorf("%w: %w", ErrVerify, err)
	}
	return idx, nil
}

// refreshStream runs one refresh of s and records its status.
func (c *Cache) refreshStream(ctx context.Context, s *stream) RefreshResult {
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return RefreshResult{Arch: s.arch, Outcome: Failed, Err: fmt.Errorf("%w: %w", ErrFetch, ctx.Err())}
	}
	defer func() { <-s.sem }()
	start := c.now()
	s.mu.Lock()
	s.lastAttempt = start
	s.mu.Unlock()

	res := c.doRefresh(ctx, s, start)
	res.Arch = s.arch
	if snap := s.cur.Load(); snap != nil {
		res.SHA256, res.Entries = snap.info.SHA256, snap.entries
	}
	c.metrics.refreshed(s, res.Outcome)
	s.mu.Lock()
	s.lastOutcome, s.lastErr = res.Outcome, res.Err
	if res.Outcome != Failed && res.Outcome != Refused {
		s.lastSuccess = c.now()
		s.failKey = ""
	}
	record := res.Outcome == Failed && res.Err != nil && ctx.Err() == nil && s.failKey != failureKind(res.Err)
	if record {
		s.failKey = failureKind(res.Err)
	}
	s.mu.Unlock()
	if record {
		c.recordEvent(ctx, s, store.Event{Kind: store.EventRefreshFailure, Detail: truncate(res.Err.Error(), 2000)})
	}
	return res
}

// failureKind classifies a refresh failure, so that a source failing the
// same way on every refresh records one event, not one per attempt.
func failureKind(err error) string {
	for _, k := range []struct {
		err  error
		name string
	}{{ErrTimeout, "timeout"}, {ErrTooLarge, "too_large"}, {ErrVerify, "verify"}, {ErrStore, "store"}, {ErrBusy, "busy"}, {ErrFetch, "fetch"}} {
		if errors.Is(err, k.err) {
			return k.name
		}
	}
	return "other"
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// lockRefresh takes the store's refresh lock of s, waiting (with backoff)
// while another replica holds it, at most as long as one fetch may take.
// waited reports that the lock was held by someone else at first.
func (c *Cache) lockRefresh(ctx context.Context, s *stream) (unlock func(), waited bool, err error) {
	budget := time.NewTimer(c.cfg.ConnectTimeout + c.cfg.HeaderTimeout + c.cfg.BodyTimeout)
	defer budget.Stop()
	delay := 20 * time.Millisecond
	for {
		unlock, ok, err := c.cfg.Store.TryLockRefresh(ctx, s.repo.cfg.Name, s.arch)
		if err != nil {
			return nil, waited, fmt.Errorf("%w: refresh lock: %w", ErrStore, err)
		}
		if ok {
			return unlock, waited, nil
		}
		waited = true
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, true, fmt.Errorf("%w: %w", ErrBusy, ctx.Err())
		case <-budget.C:
			t.Stop()
			return nil, true, ErrBusy
		case <-t.C:
		}
		delay = min(delay*2, time.Second)
	}
}

func (c *Cache) doRefresh(ctx context.Context, s *stream, start time.Time) RefreshResult {
	unlock, waited, err := c.lockRefresh(ctx, s)
	if err != nil {
		return RefreshResult{Outcome: Failed, Err: err}
	}
	defer unlock()
	// Someone (another replica) may have saved or confirmed a snapshot:
	// build on the store's latest one.
	if _, err := c.loadLatest(ctx, s); err != nil && errors.Is(err, ErrStore) {
		return RefreshResult{Outcome: Failed, Err: err}
	}
	if waited && s.cur.Load() != nil && s.confirmed.Load() >= start.UnixNano() {
		return RefreshResult{Outcome: LoadedFromStore}
	}
	cur := s.cur.Load()
	var errs []error
	refused := false
	for i, src := range s.repo.srcs {
		u := src + "/" + s.arch + "/APKINDEX.tar.gz"
		var cond conditional
		if cur != nil && (cur.source == "" || cur.source == u) {
			cond = conditional{etag: cur.etag, lastModified: cur.lastModified}
		}
		fr, err := c.fetch(ctx, s, u, cond)
		if err != nil {
			errs = append(errs, sourceErr(i, err))
			if ctx.Err() != nil {
				break
			}
			continue
		}
		now := c.now()
		if fr.notModified || (cur != nil && hexSHA256(fr.body) == cur.info.SHA256) {
			if cur == nil {
				errs = append(errs, sourceErr(i, fmt.Errorf("%w: %s: not modified, but nothing is loaded", ErrFetch, u)))
				continue
			}
			s.confirm(now)
			if err := c.cfg.Store.ConfirmFresh(ctx, cur.info.ID, now); err != nil {
				return RefreshResult{Outcome: NotModified, Err: fmt.Errorf("%w: confirming snapshot %d: %w", ErrStore, cur.info.ID, err)}
			}
			return RefreshResult{Outcome: NotModified}
		}
		out, err := c.accept(ctx, s, cur, fr, u, now)
		if err == nil {
			return RefreshResult{Outcome: out}
		}
		errs = append(errs, sourceErr(i, err))
		if errors.Is(err, ErrRollback) || errors.Is(err, ErrEquivocation) {
			refused = true
		}
		if errors.Is(err, ErrStore) {
			break
		}
	}
	out := Failed
	if refused {
		out = Refused
	}
	if len(errs) == 1 {
		return RefreshResult{Outcome: out, Err: errs[0]}
	}
	return RefreshResult{Outcome: out, Err: errors.Join(errs...)}
}

func sourceErr(i int, err error) error {
	if i == 0 {
		return fmt.Errorf("canonical URL: %w", err)
	}
	return fmt.Errorf("mirror %d: %w", i, err)
}

// accept verifies a downloaded file and, unless it is a rollback or an
// equivocation, persists it and swaps it in.
func (c *Cache) accept(ctx context.Context, s *stream, cur *snapshot, fr fetchResult, src string, now time.Time) (RefreshOutcome, error) {
	repo, arch := s.repo.cfg.Name, s.arch
	sum := hexSHA256(fr.body)
	latestID := int64(0)
	if cur != nil {
		latestID = cur.info.ID
	} else if id, err := c.cfg.Store.LatestSnapshotID(ctx, repo, arch); err == nil {
		latestID = id
	} else if !errors.Is(err, store.ErrNotFound) {
		return Failed, fmt.Errorf("%w: %w", ErrStore, err)
	}

	// Rollback, first form: byte-identical to an older snapshot. No need
	// to parse: those bytes verified when they were first seen.
	if latestID != 0 {
		older, err := c.cfg.Store.SnapshotsBySHA256(ctx, repo, arch, sum)
		if err != nil {
			return Failed, fmt.Errorf("%w: %w", ErrStore, err)
		}
		for _, o := range older {
			if o.ID < latestID {
				err := fmt.Errorf("%w: %s is byte-identical to snapshot %d fetched %s, older than the current snapshot %d",
					ErrRollback, src, o.ID, o.FetchedAt.UTC().Format(time.RFC3339), latestID)
				c.refuse(ctx, s, sum, fr.body, []store.Event{{Kind: store.EventRollback, Detail: err.Error()}})
				return Refused, err
			}
		}
	}

	idx, err := c.verify(s, fr.body)
	if err != nil {
		return Failed, fmt.Errorf("%s: %w", src, err)
	}
	checkStart := time.Now()
	next := entriesOf(idx, arch)
	var prev []store.Entry
	switch {
	case cur != nil:
		prev = entriesOf(cur.idx, arch)
	case latestID != 0:
		// Nothing loaded (the stored snapshot did not verify at start),
		// but the store knows the current entries: compare with those.
		recs, err := c.cfg.Store.SeenEntries(ctx, repo, arch)
		if err != nil {
			return Failed, fmt.Errorf("%w: seen entries: %w", ErrStore, err)
		}
		for _, r := range recs {
			if r.Current() {
				prev = append(prev, r.Entry)
			}
		}
	}
	// Rollback, second form: a package's newest known version dropped
	// while only older ones are offered.
	if len(prev) > 0 {
		if rb := rollbacks(prev, next); len(rb) > 0 {
			err := fmt.Errorf("%w: %s drops the newest known version of %d package(s), e.g. %s %s (now offering only up to %s)",
				ErrRollback, src, len(rb), rb[0].name, rb[0].dropped, rb[0].offered)
			ev := store.Event{Kind: store.EventRollback, Name: rb[0].name, Version: rb[0].dropped, Detail: err.Error()}
			c.refuse(ctx, s, sum, fr.body, []store.Event{ev})
			return Refused, err
		}
	}
	diff := diffEntries(prev, next)
	// Equivocation: an entry listed with a checksum other than one seen
	// before, in this index or any earlier one (the store remembers).
	eq, err := c.equivocations(ctx, s, prev, diff.Added, latestID != 0)
	if err != nil {
		return Failed, err
	}
	if len(eq) > 0 {
		err := fmt.Errorf("%w: %s lists %d entr(ies) with a checksum other than one seen before, e.g. %s %s: was %s, now %s",
			ErrEquivocation, src, len(eq), eq[0].Name, eq[0].Version, eq[0].Checksum, eq[0].OtherChecksum)
		const maxEvents = 100
		evs := eq[:min(len(eq), maxEvents)]
		for i := range evs {
			evs[i].Detail = fmt.Sprintf("%s lists %s %s with %s; seen before with %s (%d equivocating entries in this index)",
				src, evs[i].Name, evs[i].Version, evs[i].OtherChecksum, evs[i].Checksum, len(eq))
		}
		c.refuse(ctx, s, sum, fr.body, evs)
		return Refused, err
	}
	c.metrics.checked(s, time.Since(checkStart))

	snap := store.Snapshot{
		Parent: latestID, Repository: repo, Arch: arch, SHA256: sum, FetchedAt: now, ConfirmedAt: now,
		ETag: fr.etag, LastModified: fr.lastModified, KeyNames: idx.VerifiedKeys(), EntryCount: len(next),
		Description: idx.Description, Raw: fr.body,
	}
	id, err := c.cfg.Store.SaveSnapshot(ctx, snap, diff)
	if err != nil && (errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrInvalidArgument)) {
		// Either another replica saved first, or the store's idea of the
		// current entries differs from ours: decide from the store.
		if lid, lerr := c.cfg.Store.LatestSnapshotID(ctx, repo, arch); lerr == nil && lid != latestID {
			if loaded, err := c.loadLatest(ctx, s); err == nil && loaded {
				return LoadedFromStore, nil
			}
		} else if d, derr := c.diffAgainstStore(ctx, s, next); derr == nil {
			id, err = c.cfg.Store.SaveSnapshot(ctx, snap, d)
		}
	}
	if err != nil {
		return Failed, fmt.Errorf("%w: saving snapshot of %s/%s: %w", ErrStore, repo, arch, err)
	}
	s.cur.Store(&snapshot{
		idx: idx,
		info: SnapshotInfo{
			ID: id, IndexURL: s.canonicalIndexURL(), SHA256: sum, Keys: idx.VerifiedKeys(),
			FetchedAt: now.UTC(), ConfirmedAt: now.UTC(),
		},
		entries: len(next), etag: fr.etag, lastModified: fr.lastModified, source: src,
	})
	s.confirm(now)
	return Updated, nil
}

// refuse records the events of a refused file once per distinct file.
func (c *Cache) refuse(ctx context.Context, s *stream, sum string, body []byte, evs []store.Event) {
	s.mu.Lock()
	seen := s.refusedSHA[sum]
	if !seen {
		if len(s.refusedSHA) >= 64 {
			clear(s.refusedSHA)
		}
		s.refusedSHA[sum] = true
	}
	s.mu.Unlock()
	if seen {
		return
	}
	for i, ev := range evs {
		ev.SHA256 = sum
		if i == 0 && len(body) <= maxEvidence {
			ev.Evidence = body
		}
		c.recordEvent(ctx, s, ev)
	}
}

// maxEvidence bounds the refused file kept with an event.
const maxEvidence = 4 << 20

func (c *Cache) recordEvent(ctx context.Context, s *stream, ev store.Event) {
	ev.Repository, ev.Arch = s.repo.cfg.Name, s.arch
	if ev.Time.IsZero() {
		ev.Time = c.now().UTC()
	}
	c.metrics.event(ev.Repository, ev.Arch, ev.Kind)
	// Best effort: the refusal itself is what protects; a store outage must
	// not turn it into an acceptance. The error shows in Status via the
	// refresh result.
	_, _ = c.cfg.Store.AppendEvent(ctx, ev)
}

// entriesOf lists the distinct (name, version, checksum) of idx whose arch
// is arch. Strings alias the index text.
func entriesOf(idx *apk.Index, arch string) []store.Entry {
	out := make([]store.Entry, 0, idx.Len())
	seen := make(map[nv]struct{}, idx.Len())
	for e := range idx.Identities() {
		if e.Arch != arch {
			continue
		}
		k := nv{e.Name, e.Version}
		if _, dup := seen[k]; dup {
			continue // apk drops conflicting duplicates; identical ones count once
		}
		seen[k] = struct{}{}
		out = append(out, store.Entry{Name: e.Name, Version: e.Version, Checksum: e.Checksum})
	}
	return out
}

type nv struct{ name, version string }

// diffEntries returns the change from prev to next.
func diffEntries(prev, next []store.Entry) store.Diff {
	old := make(map[nv]apk.Checksum, len(prev))
	for _, e := range prev {
		old[nv{e.Name, e.Version}] = e.Checksum
	}
	var d store.Diff
	inNext := make(map[nv]struct{}, len(next))
	for _, e := range next {
		k := nv{e.Name, e.Version}
		inNext[k] = struct{}{}
		if o, ok := old[k]; ok {
			if o.Equal(e.Checksum) {
				continue
			}
			d.Removed = append(d.Removed, store.Entry{Name: e.Name, Version: e.Version, Checksum: o})
		}
		d.Added = append(d.Added, e)
	}
	for _, e := range prev {
		if _, ok := inNext[nv{e.Name, e.Version}]; !ok {
			d.Removed = append(d.Removed, e)
		}
	}
	return d
}

// diffAgainstStore computes the diff from the store's current entries.
func (c *Cache) diffAgainstStore(ctx context.Context, s *stream, next []store.Entry) (store.Diff, error) {
	recs, err := c.cfg.Store.SeenEntries(ctx, s.repo.cfg.Name, s.arch)
	if err != nil {
		return store.Diff{}, err
	}
	var prev []store.Entry
	for _, r := range recs {
		if r.Current() {
			prev = append(prev, r.Entry)
		}
	}
	return diffEntries(prev, next), nil
}

type rollback struct{ name, dropped, offered string }

// rollbacks finds packages whose newest version in prev is missing from
// next while next offers only older versions of them. A package missing
// from next altogether was removed, not rolled back. Versions that do not
// parse are not compared.
func rollbacks(prev, next []store.Entry) []rollback {
	newest := func(es []store.Entry) map[string]string {
		m := make(map[string]string, len(es)/2)
		for _, e := range es {
			if v, ok := m[e.Name]; !ok || compareVersions(e.Version, v) > 0 {
				m[e.Name] = e.Version
			}
		}
		return m
	}
	oldNewest, newNewest := newest(prev), newest(next)
	has := make(map[nv]struct{}, len(next))
	for _, e := range next {
		has[nv{e.Name, e.Version}] = struct{}{}
	}
	var out []rollback
	for name, ov := range oldNewest {
		nv2, ok := newNewest[name]
		if !ok {
			continue
		}
		if _, kept := has[nv{name, ov}]; kept {
			continue
		}
		if !validVersion(ov) || !validVersion(nv2) {
			continue
		}
		if compareVersions(nv2, ov) < 0 {
			out = append(out, rollback{name: name, dropped: ov, offered: nv2})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// equivocations returns, for each added entry listed with a checksum other
// than one seen before for its (name, version) — in prev or in the store's
// history — an event carrying both checksums (Checksum the old one,
// OtherChecksum the new one), unless an operator accepted that checksum.
func (c *Cache) equivocations(ctx context.Context, s *stream, prev, added []store.Entry, haveHistory bool) ([]store.Event, error) {
	if len(added) == 0 {
		return nil, nil
	}
	repo, arch := s.repo.cfg.Name, s.arch
	old := make(map[nv]apk.Checksum, len(prev))
	for _, e := range prev {
		old[nv{e.Name, e.Version}] = e.Checksum
	}
	type cand struct {
		e    store.Entry
		prev apk.Checksum
	}
	var cands []cand
	var unknown []store.Entry // not in prev: ask the history
	for _, e := range added {
		if o, ok := old[nv{e.Name, e.Version}]; ok {
			if !o.Equal(e.Checksum) {
				cands = append(cands, cand{e, o})
			}
			continue
		}
		unknown = append(unknown, e)
	}
	if haveHistory && len(unknown) > 0 {
		check := func(e store.Entry, recs []store.EntryRecord) {
			var other apk.Checksum
			for _, r := range recs {
				if r.Checksum.Equal(e.Checksum) {
					return // seen with this checksum before
				}
				other = r.Checksum
			}
			if !other.IsZero() {
				cands = append(cands, cand{e, other})
			}
		}
		// One indexed query per new entry (tens of µs on SQLite, a round
		// trip on PostgreSQL) beats reading the whole history (a second or
		// two for 186,000 entries) until the new entries are a sizeable
		// share of the index: a 1% change of Wolfi is 1,860 queries.
		perEntryLimit := max(256, len(prev)/32)
		if len(unknown) <= perEntryLimit {
			for _, e := range unknown {
				recs, err := c.cfg.Store.EntryHistory(ctx, repo, arch, e.Name, e.Version)
				if err != nil {
					return nil, fmt.Errorf("%w: entry history: %w", ErrStore, err)
				}
				check(e, recs)
			}
		} else {
			all, err := c.cfg.Store.SeenEntries(ctx, repo, arch)
			if err != nil {
				return nil, fmt.Errorf("%w: seen entries: %w", ErrStore, err)
			}
			byNV := make(map[nv][]store.EntryRecord, len(all))
			for _, r := range all {
				k := nv{r.Name, r.Version}
				byNV[k] = append(byNV[k], r)
			}
			for _, e := range unknown {
				check(e, byNV[nv{e.Name, e.Version}])
			}
		}
	}
	if len(cands) == 0 {
		return nil, nil
	}
	accepted, err := c.accepted(ctx, repo, arch)
	if err != nil {
		return nil, err
	}
	var out []store.Event
	for _, cd := range cands {
		if accepted[acceptKey(cd.e.Name, cd.e.Version, cd.e.Checksum)] {
			continue
		}
		out = append(out, store.Event{
			Kind: store.EventEquivocation, Name: cd.e.Name, Version: cd.e.Version,
			Checksum: cd.prev, OtherChecksum: cd.e.Checksum,
		})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].Version < out[j].Version
	})
	return out, nil
}

func acceptKey(name, version string, sum apk.Checksum) string {
	return name + "\x00" + version + "\x00" + sum.Key()
}

// accepted reads every accepted equivocation of (repo, arch) from the
// store (written by AcceptEquivocation on any replica).
func (c *Cache) accepted(ctx context.Context, repo, arch string) (map[string]bool, error) {
	out := map[string]bool{}
	q := store.EventQuery{Repository: repo, Arch: arch, Kind: store.EventEquivocationAccepted, PageSize: 1000}
	for {
		page, next, err := c.cfg.Store.ListEvents(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("%w: accepted equivocations: %w", ErrStore, err)
		}
		for _, ev := range page {
			out[acceptKey(ev.Name, ev.Version, ev.OtherChecksum)] = true
		}
		if next == "" {
			return out, nil
		}
		q.PageToken = next
	}
}

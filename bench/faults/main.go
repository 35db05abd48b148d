// Command faults runs the real vouchd under continuous verify load while its upstream repository fails in turn (down, slow, garbage, rollback) and checks that vouchd fails closed and recovers by itself.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	"github.com/vouchdev/vouch/bench/internal/fixture"
	"github.com/vouchdev/vouch/bench/internal/harness"
	vouchv1 "github.com/vouchdev/vouch/proto/vouch/v1"
)

// allFaults is the default sequence, in order.
var allFaults = []string{
	"down-refused", "down-503", "slow-headers", "slow-body",
	"garbage-random", "garbage-truncated", "rollback-replay", "rollback-resigned",
}

type options struct {
	store, pgDSN           string
	entries, packages      int
	clients                int
	qps                    float64
	refresh, maxAge        time.Duration
	fault, ok              time.Duration
	tolerance, recover     time.Duration
	rpcTimeout, startLimit time.Duration
	maxErrors              int
	faults                 []string
	vouchd                 string
	keep, timeline         bool
	dropSlow               bool
	seed                   uint64
}

func main() {
	var o options
	var faults string
	flag.StringVar(&o.store, "store", "sqlite", "store backend: sqlite or postgres")
	flag.StringVar(&o.pgDSN, "pg-dsn", harness.DefaultPostgresDSN, "PostgreSQL DSN (a fresh schema is created and dropped)")
	flag.IntVar(&o.entries, "entries", 5000, "entries in the generated index")
	flag.IntVar(&o.packages, "packages", 50, "packages per VerifyPackages request (verify only)")
	flag.IntVar(&o.clients, "clients", 4, "concurrent load goroutines")
	flag.Float64Var(&o.qps, "qps", 100, "total VerifyPackages requests per second")
	flag.DurationVar(&o.refresh, "refresh", 3*time.Second, "repository refresh interval (vouchd allows >= 1s)")
	flag.DurationVar(&o.maxAge, "max-age", 15*time.Second, "repository max_age (vouchd requires >= refresh)")
	flag.DurationVar(&o.fault, "fault", 40*time.Second, "length of each fault phase (must exceed max-age + refresh; slow-headers only reaches vouchd's 30 s header timeout in phases longer than that)")
	flag.DurationVar(&o.ok, "ok", 20*time.Second, "length of the warm-up and of the healthy phase after each fault")
	flag.DurationVar(&o.tolerance, "tolerance", 500*time.Millisecond, "clock and processing slack allowed around max_age")
	flag.DurationVar(&o.recover, "recover-within", 0, "the longest acceptable time from the upstream's return to VERIFIED again (0: 2*refresh + 5s)")
	flag.IntVar(&o.maxErrors, "max-errors", 0, "RPC errors tolerated per phase")
	flag.DurationVar(&o.rpcTimeout, "rpc-timeout", 2*time.Second, "deadline of each VerifyPackages call")
	flag.DurationVar(&o.startLimit, "start-timeout", time.Minute, "how long vouchd may take to become ready")
	flag.StringVar(&faults, "faults", strings.Join(allFaults, ","), "comma-separated faults to inject, in order: "+strings.Join(allFaults, ", "))
	flag.StringVar(&o.vouchd, "vouchd", "", "use this vouchd binary instead of building ./cmd/vouchd")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory")
	flag.BoolVar(&o.timeline, "timeline", true, "print the per-second timeline")
	flag.BoolVar(&o.dropSlow, "drop-slow", true, "drop the connections a slow fault holds when it ends; with false they go on until vouchd gives up (header timeout 30 s, body timeout 5 min per attempt, 3 attempts), so raise -recover-within and -ok")
	flag.Uint64Var(&o.seed, "seed", 1, "seed of the generated entries")
	flag.Parse()
	if o.recover == 0 {
		o.recover = 2*o.refresh + 5*time.Second
	}
	for _, f := range strings.Split(faults, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		if !slices.Contains(allFaults, f) {
			usage("-faults: unknown fault %q (want %s)", f, strings.Join(allFaults, ", "))
		}
		o.faults = append(o.faults, f)
	}
	switch {
	case o.store != "sqlite" && o.store != "postgres":
		usage("-store %q: want sqlite or postgres", o.store)
	case o.refresh < time.Second || o.maxAge < o.refresh:
		usage("want -refresh >= 1s and -max-age >= -refresh (vouchd's configuration rules)")
	case o.fault <= o.maxAge+o.refresh:
		usage("-fault %s must be longer than -max-age + -refresh (%s) for the index to turn stale", o.fault, o.maxAge+o.refresh)
	case o.ok <= o.recover:
		usage("-ok %s must be longer than -recover-within %s", o.ok, o.recover)
	case o.clients < 1 || o.qps <= 0 || o.packages < 1 || o.entries < 2*o.packages+100:
		usage("want -clients >= 1, -qps > 0, -packages >= 1, -entries >= 2*packages+100")
	case len(o.faults) == 0:
		usage("no faults selected")
	}
	os.Exit(harness.Main(func(ctx context.Context) error { return run(ctx, o) }))
}

func usage(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "faults: "+format+"\n", args...)
	os.Exit(2)
}

// phase is one stretch of the timeline.
type phase struct {
	name   string
	fault  bool
	mode   fixture.Mode
	other  *fixture.Blob // served in ModeServe
	start  time.Time
	end    time.Time
	before harness.Metrics
	after  harness.Metrics
	status *vouchv1.ArchStatus // at the end of the phase
	notes  []string            // checks done while vouchd ran
	fails  []string
}

// result is one VerifyPackages call.
type result struct {
	sent, recv time.Time
	verdict    vouchv1.Verdict // UNSPECIFIED on an RPC error
	code       string          // gRPC code of an error, "" on success
	reason     string          // first package's reason, kept for INDEX_STALE only
}

// statusSample is one GetRepositoryStatus poll.
type statusSample struct {
	at        time.Time
	freshness vouchv1.Freshness
	sha       string
}

func run(ctx context.Context, o options) error {
	fmt.Println(harness.Header(ctx, "vouch bench: faults"))
	fmt.Printf("store %s, refresh %s, max_age %s, fault phases %s, healthy phases %s, %d clients at %g req/s total, %d packages per request\n\n",
		o.store, o.refresh, o.maxAge, o.fault, o.ok, o.clients, o.qps, o.packages)
	dir, err := harness.TempDir("vouch-faults-", o.keep)
	if err != nil {
		return err
	}
	bin, err := harness.BuildVouchd(ctx, dir, o.vouchd)
	if err != nil {
		return err
	}
	keys, err := fixture.NewKeys(dir)
	if err != nil {
		return err
	}
	// v1 is served first, v2 (1% newer versions) is published during the
	// warm-up; the rollbacks serve v1 again (replay) or v1's entries under
	// a fresh signature (drops the newest versions).
	v1 := fixture.Entries(o.entries, o.seed)
	claimed := make([]int, o.packages)
	for i := range claimed {
		claimed[i] = i * (o.entries / o.packages)
	}
	v2, _ := fixture.Successor(v1, 0.01, o.seed+1, func(i int) bool { return slices.Contains(claimed, i) })
	raw1, err := fixture.SignIndex(keys.Repo, v1, "bench v1")
	if err != nil {
		return err
	}
	raw2, err := fixture.SignIndex(keys.Repo, v2, "bench v2")
	if err != nil {
		return err
	}
	raw1b, err := fixture.SignIndex(keys.Repo, v1, "bench v1, signed again")
	if err != nil {
		return err
	}
	now := time.Now()
	b1, b2, b1b := fixture.NewBlob(raw1, now.Add(-2*time.Hour)), fixture.NewBlob(raw2, now), fixture.NewBlob(raw1b, now.Add(-time.Hour))
	up, err := fixture.StartUpstream(b1)
	if err != nil {
		return err
	}
	up.KeepSlow(!o.dropSlow)
	harness.Cleanup(up.Close)
	claims := fixture.Claims(v1, claimed, up.URL())

	storeURL := "sqlite://" + filepath.Join(dir, "vouch.db")
	if o.store == "postgres" {
		if storeURL, err = harness.PostgresSchema(ctx, o.pgDSN); err != nil {
			return err
		}
	}
	listen, err := harness.FreeAddr()
	if err != nil {
		return err
	}
	metrics, err := harness.FreeAddr()
	if err != nil {
		return err
	}
	cfgPath := filepath.Join(dir, "vouch.yaml")
	if err := fixture.NewConfig(listen, metrics, storeURL, keys, up.URL(), o.refresh, o.maxAge).Write(cfgPath); err != nil {
		return err
	}
	conn, err := harness.Dial(ctx, listen)
	if err != nil {
		return err
	}
	defer conn.Close()
	p, err := harness.Start("vouchd", bin, cfgPath, filepath.Join(dir, "vouchd.log"))
	if err != nil {
		return err
	}
	if _, err := p.WaitReady(ctx, conn, metrics, o.startLimit); err != nil {
		return err
	}

	phases := []*phase{{name: "warm-up (v2 published)", mode: fixture.ModeOK}}
	for _, f := range o.faults {
		ph := &phase{name: f, fault: true}
		switch f {
		case "down-refused":
			ph.mode = fixture.ModeRefused
		case "down-503":
			ph.mode = fixture.Mode503
		case "slow-headers":
			ph.mode = fixture.ModeSlowHeaders
		case "slow-body":
			ph.mode = fixture.ModeSlowBody
		case "garbage-random":
			ph.mode = fixture.ModeGarbage
		case "garbage-truncated":
			ph.mode = fixture.ModeTruncated
		case "rollback-replay":
			ph.mode, ph.other = fixture.ModeServe, b1
		case "rollback-resigned":
			ph.mode, ph.other = fixture.ModeServe, b1b
		}
		phases = append(phases, ph, &phase{name: "ok after " + f, mode: fixture.ModeOK})
	}

	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	var wg sync.WaitGroup
	perClient := make([][]result, o.clients)
	for c := range o.clients {
		wg.Go(func() { perClient[c] = load(loadCtx, conn, claims, o) })
	}
	var samples []statusSample
	wg.Go(func() { samples = pollStatus(loadCtx, conn) })

	loadStart := time.Now()
	up.Publish(b2)
	var runErr error
	for _, ph := range phases {
		if runErr = runPhase(ctx, ph, up, conn, metrics, o, loadStart); runErr != nil {
			break
		}
		if ph == phases[0] && (ph.status == nil || ph.status.GetIndexSha256() != b2.SHA256) {
			runErr = fmt.Errorf("warm-up: vouchd serves index %s, not the published successor %s", ph.status.GetIndexSha256(), b2.SHA256)
			break
		}
		checkEvents(ph, b1, b1b)
	}
	stopLoad()
	wg.Wait()
	if p.Exited() {
		return fmt.Errorf("vouchd exited during the run (%s):\n%s", p.ExitStatus(), p.TailLog(20))
	}
	if _, err := p.Term(time.Minute); err != nil {
		return err
	}
	if runErr != nil {
		return runErr
	}

	var results []result
	for _, rs := range perClient {
		results = append(results, rs...)
	}
	sort.Slice(results, func(i, j int) bool { return results[i].recv.Before(results[j].recv) })
	var goods []fixture.Request
	for _, r := range up.Requests() {
		if r.Good {
			goods = append(goods, r)
		}
	}
	a := analysis{o: o, goods: goods, results: results, phases: phases}
	a.check()
	if o.timeline {
		printTimeline(loadStart, phases, results, samples, up.Requests())
	}
	failed := a.summary()
	if failed > 0 {
		return fmt.Errorf("%d expectation(s) failed", failed)
	}
	fmt.Println("\nall expectations held")
	return nil
}

// runPhase switches the upstream, waits out the phase and records
// vouchd's metrics and status around it.
func runPhase(ctx context.Context, ph *phase, up *fixture.Upstream, conn *grpc.ClientConn, metrics string, o options, t0 time.Time) error {
	var err error
	if ph.before, err = harness.Scrape(ctx, metrics); err != nil {
		return err
	}
	if err := up.SetMode(ph.mode, ph.other); err != nil {
		return err
	}
	ph.start = time.Now()
	d := o.ok
	if ph.fault {
		d = o.fault
	}
	fmt.Printf("t=%6.1fs  %-28s upstream %s for %s\n", ph.start.Sub(t0).Seconds(), ph.name, ph.mode, d)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
	}
	ph.end = time.Now()
	if ph.after, err = harness.Scrape(ctx, metrics); err != nil {
		return err
	}
	st, err := archStatus(ctx, conn)
	if err != nil {
		return err
	}
	ph.status = st
	return nil
}

func archStatus(ctx context.Context, conn *grpc.ClientConn) (*vouchv1.ArchStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := vouchv1.NewReaderServiceClient(conn).GetRepositoryStatus(ctx, &vouchv1.GetRepositoryStatusRequest{Repository: "bench", EventLimit: 100})
	if err != nil {
		return nil, fmt.Errorf("GetRepositoryStatus: %w", err)
	}
	if len(resp.GetRepositories()) != 1 || len(resp.GetRepositories()[0].GetArchitectures()) != 1 {
		return nil, errors.New("GetRepositoryStatus: want one repository with one arch")
	}
	return resp.GetRepositories()[0].GetArchitectures()[0], nil
}

// checkEvents checks, for a rollback phase, that vouchd counted and
// recorded the refused file.
func checkEvents(ph *phase, b1, b1b *fixture.Blob) {
	if ph.mode != fixture.ModeServe {
		return
	}
	n := ph.after.Sum("vouch_index_events_total", "kind", "rollback") - ph.before.Sum("vouch_index_events_total", "kind", "rollback")
	refused := ph.after.Sum("vouch_index_refreshes_total", "outcome", "refused") - ph.before.Sum("vouch_index_refreshes_total", "outcome", "refused")
	if n < 1 {
		ph.fails = append(ph.fails, "vouch_index_events_total{kind=\"rollback\"} did not increase")
	} else {
		ph.notes = append(ph.notes, fmt.Sprintf("rollback events +%g, refused refreshes +%g", n, refused))
	}
	want := b1.SHA256
	if ph.other == b1b {
		want = b1b.SHA256
	}
	found := false
	for _, ev := range ph.status.GetRecentEvents() {
		if ev.GetKind() == vouchv1.EventKind_EVENT_KIND_ROLLBACK && ev.GetIndexSha256() == want {
			found = true
		}
	}
	if !found {
		ph.fails = append(ph.fails, "GetRepositoryStatus lists no ROLLBACK event for the served file "+want[:12])
	} else {
		ph.notes = append(ph.notes, "ROLLBACK event for "+want[:12]+" in GetRepositoryStatus")
	}
}

// load calls VerifyPackages at its share of the rate until ctx ends.
func load(ctx context.Context, conn *grpc.ClientConn, claims []*vouchv1.PackageClaim, o options) []result {
	bc := vouchv1.NewBuilderServiceClient(conn)
	req := &vouchv1.VerifyPackagesRequest{Packages: claims, Options: &vouchv1.VerifyOptions{}}
	t := time.NewTicker(time.Duration(float64(o.clients) / o.qps * float64(time.Second)))
	defer t.Stop()
	var out []result
	for {
		select {
		case <-ctx.Done():
			return out
		case <-t.C:
		}
		r := result{sent: time.Now()}
		cctx, cancel := context.WithTimeout(ctx, o.rpcTimeout)
		resp, err := bc.VerifyPackages(cctx, req)
		cancel()
		r.recv = time.Now()
		if err != nil {
			if ctx.Err() != nil {
				return out // stopped mid-call: not a result
			}
			r.code = status.Code(err).String()
		} else {
			r.verdict = resp.GetVerdict()
			if r.verdict == vouchv1.Verdict_VERDICT_INDEX_STALE && len(resp.GetResults()) > 0 {
				r.reason = resp.GetResults()[0].GetReason()
			}
		}
		out = append(out, r)
	}
}

// pollStatus samples vouchd's own view of the index once a second.
func pollStatus(ctx context.Context, conn *grpc.ClientConn) []statusSample {
	var out []statusSample
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return out
		case <-t.C:
		}
		st, err := archStatus(ctx, conn)
		if err != nil {
			continue
		}
		out = append(out, statusSample{at: time.Now(), freshness: st.GetFreshness(), sha: st.GetIndexSha256()})
	}
}

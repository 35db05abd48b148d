// Command ingest measures how the real vouchd ingests a Wolfi-size signed index: cold start on an empty store, a refresh after 1% of the entries changed, and a restart from the store with the upstream down.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/grpc"

	"github.com/vouchdev/vouch/apk"
	"github.com/vouchdev/vouch/bench/internal/fixture"
	"github.com/vouchdev/vouch/bench/internal/harness"
	vouchv1 "github.com/vouchdev/vouch/proto/vouch/v1"
)

type options struct {
	entries      int
	change       float64
	stores       []string
	pgDSN        string
	refresh      time.Duration
	sample       int
	startTimeout time.Duration
	rpcTimeout   time.Duration
	vouchd       string
	keep         bool
	seed         uint64
}

func main() {
	var o options
	var stores string
	flag.IntVar(&o.entries, "entries", 186_000, "index entries (Wolfi has about 186,000)")
	flag.Float64Var(&o.change, "change", 0.01, "fraction of entries that get a newer version in the refreshed index")
	flag.StringVar(&stores, "store", "sqlite", "store backend: sqlite, postgres or both")
	flag.StringVar(&o.pgDSN, "pg-dsn", harness.DefaultPostgresDSN, "PostgreSQL DSN (a fresh schema is created and dropped)")
	flag.DurationVar(&o.refresh, "refresh", time.Hour, "repository refresh interval (long, so that only the forced refresh runs; the first fetch after a cold start waits a random 0..min(refresh/10, 5s))")
	flag.IntVar(&o.sample, "sample", 50, "packages verified after each step as a correctness check")
	flag.DurationVar(&o.startTimeout, "start-timeout", 10*time.Minute, "how long vouchd may take to become ready")
	flag.DurationVar(&o.rpcTimeout, "rpc-timeout", 10*time.Minute, "deadline of the RefreshRepository RPC")
	flag.StringVar(&o.vouchd, "vouchd", "", "use this vouchd binary instead of building ./cmd/vouchd")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory")
	flag.Uint64Var(&o.seed, "seed", 1, "seed of the generated entries and changes")
	flag.Parse()
	switch stores {
	case "sqlite", "postgres":
		o.stores = []string{stores}
	case "both":
		o.stores = []string{"sqlite", "postgres"}
	default:
		fmt.Fprintf(os.Stderr, "ingest: -store %q: want sqlite, postgres or both\n", stores)
		os.Exit(2)
	}
	if o.entries < 100 || o.change <= 0 || o.change > 0.5 || o.sample < 1 {
		fmt.Fprintln(os.Stderr, "ingest: want -entries >= 100, 0 < -change <= 0.5, -sample >= 1")
		os.Exit(2)
	}
	os.Exit(harness.Main(func(ctx context.Context) error { return run(ctx, o) }))
}

// data is the generated repository: two successive signed indexes.
type data struct {
	keys     *fixture.Keys
	v1, v2   []apk.Entry
	b1, b2   *fixture.Blob
	changed  []int // positions whose version changed from v1 to v2
	unchosen []int // sample positions that did not change
}

// row is one line of the result table.
type row struct {
	store, step, time, detail, verify, check, rss, peak string
}

func run(ctx context.Context, o options) error {
	fmt.Println(harness.Header(ctx, "vouch bench: ingest"))
	dir, err := harness.TempDir("vouch-ingest-", o.keep)
	if err != nil {
		return err
	}
	t := time.Now()
	bin, err := harness.BuildVouchd(ctx, dir, o.vouchd)
	if err != nil {
		return err
	}
	fmt.Printf("vouchd built in %s\n", harness.Seconds(time.Since(t)))

	t = time.Now()
	d, err := generate(dir, o)
	if err != nil {
		return err
	}
	fmt.Printf("generated: %d entries, index %s (%d bytes), successor with %d changed versions %s (%d bytes), in %s\n\n",
		len(d.v1), d.b1.SHA256[:12], len(d.b1.Data), len(d.changed), d.b2.SHA256[:12], len(d.b2.Data), harness.Seconds(time.Since(t)))

	up, err := fixture.StartUpstream(d.b1)
	if err != nil {
		return err
	}
	harness.Cleanup(up.Close)

	var rows []row
	for _, kind := range o.stores {
		if err := ctx.Err(); err != nil {
			return err
		}
		r, err := runStore(ctx, o, dir, bin, kind, d, up)
		rows = append(rows, r...)
		if err != nil {
			printTable(rows)
			return fmt.Errorf("%s: %w", kind, err)
		}
	}
	printTable(rows)
	return nil
}

func generate(dir string, o options) (*data, error) {
	keys, err := fixture.NewKeys(dir)
	if err != nil {
		return nil, err
	}
	d := &data{keys: keys, v1: fixture.Entries(o.entries, o.seed)}
	r := rand.New(rand.NewPCG(o.seed, 0x73616d70))
	d.v2, d.changed = fixture.Successor(d.v1, o.change, o.seed+1, nil)
	changed := map[int]bool{}
	for _, i := range d.changed {
		changed[i] = true
	}
	for _, i := range r.Perm(len(d.v1)) {
		if len(d.unchosen) == o.sample {
			break
		}
		if !changed[i] {
			d.unchosen = append(d.unchosen, i)
		}
	}
	raw1, err := fixture.SignIndex(keys.Repo, d.v1, "bench v1")
	if err != nil {
		return nil, err
	}
	raw2, err := fixture.SignIndex(keys.Repo, d.v2, "bench v2")
	if err != nil {
		return nil, err
	}
	now := time.Now()
	d.b1 = fixture.NewBlob(raw1, now.Add(-time.Hour))
	d.b2 = fixture.NewBlob(raw2, now)
	return d, nil
}

// snapshotMetrics are the index metrics the table reports.
type snapshotMetrics struct {
	verifySum, verifyCount, checkSum, checkCount, fetched, entries float64
}

func readMetrics(ctx context.Context, addr string) (snapshotMetrics, error) {
	m, err := harness.Scrape(ctx, addr)
	if err != nil {
		return snapshotMetrics{}, err
	}
	return snapshotMetrics{
		verifySum:   m.Sum("vouch_index_verify_parse_seconds_sum", "result", "ok"),
		verifyCount: m.Sum("vouch_index_verify_parse_seconds_count", "result", "ok"),
		checkSum:    m.Sum("vouch_index_check_seconds_sum"),
		checkCount:  m.Sum("vouch_index_check_seconds_count"),
		fetched:     m.Sum("vouch_index_fetched_bytes_total"),
		entries:     m.Sum("vouch_index_entries"),
	}, nil
}

func (a snapshotMetrics) verifyCell(b snapshotMetrics) string {
	n := a.verifyCount - b.verifyCount
	if n == 0 {
		return "—"
	}
	return fmt.Sprintf("%s (%d file)", harness.Seconds(secs(a.verifySum-b.verifySum)), int(n))
}

func (a snapshotMetrics) checkCell(b snapshotMetrics) string {
	if a.checkCount-b.checkCount == 0 {
		return "—"
	}
	return harness.Seconds(secs(a.checkSum - b.checkSum))
}

func secs(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }

func runStore(ctx context.Context, o options, dir, bin, kind string, d *data, up *fixture.Upstream) ([]row, error) {
	sdir := filepath.Join(dir, kind)
	if err := os.MkdirAll(sdir, 0o755); err != nil {
		return nil, fmt.Errorf("work directory: %w", err)
	}
	storeURL := "sqlite://" + filepath.Join(sdir, "vouch.db")
	if kind == "postgres" {
		u, err := harness.PostgresSchema(ctx, o.pgDSN)
		if err != nil {
			return nil, err
		}
		storeURL = u
	}
	up.Publish(d.b1)
	if err := up.SetMode(fixture.ModeOK, nil); err != nil {
		return nil, err
	}
	listen, err := harness.FreeAddr()
	if err != nil {
		return nil, err
	}
	metrics, err := harness.FreeAddr()
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(sdir, "vouch.yaml")
	cfg := fixture.NewConfig(listen, metrics, storeURL, d.keys, up.URL(), o.refresh, 24*time.Hour)
	if err := cfg.Write(cfgPath); err != nil {
		return nil, err
	}
	conn, err := harness.Dial(ctx, listen)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	var rows []row
	add := func(step, took, detail, verify, check string, mem harness.Memory) {
		rows = append(rows, row{kind, step, took, detail, verify, check, harness.MiB(mem.RSS), harness.MiB(mem.Peak)})
	}

	// (a) Cold start: empty store, fetch + verify + parse + store.
	seen := len(up.Requests())
	p, err := harness.Start("vouchd", bin, cfgPath, filepath.Join(sdir, "vouchd-cold.log"))
	if err != nil {
		return rows, err
	}
	ready, err := p.WaitReady(ctx, conn, metrics, o.startTimeout)
	if err != nil {
		return rows, err
	}
	reqs := up.Requests()[seen:]
	if len(reqs) == 0 {
		return rows, errors.New("cold start: vouchd became ready without fetching the index")
	}
	firstGET := reqs[0].Start.Sub(p.Started)
	m0, err := readMetrics(ctx, metrics)
	if err != nil {
		return rows, err
	}
	mem, err := p.Memory()
	if err != nil {
		return rows, err
	}
	if int(m0.entries) != len(d.v1) {
		return rows, fmt.Errorf("cold start: vouch_index_entries = %v, want %d", m0.entries, len(d.v1))
	}
	if err := verifySample(ctx, conn, fixture.Claims(d.v1, d.unchosen, up.URL()), "cold start"); err != nil {
		return rows, err
	}
	add("cold start, empty store → SERVING", harness.Seconds(ready.Serving),
		fmt.Sprintf("first GET %s; fetched %.1f MB, last byte %s; /healthz 200 %s",
			harness.Seconds(firstGET), m0.fetched/1e6, harness.Seconds(reqs[0].End.Sub(p.Started)), harness.Seconds(ready.Healthz)),
		m0.verifyCell(snapshotMetrics{}), m0.checkCell(snapshotMetrics{}), mem)

	// (a') Forced refresh of an unchanged index: a conditional GET, 304.
	seen = len(up.Requests())
	took, res, err := refresh(ctx, conn, o.rpcTimeout)
	if err != nil {
		return rows, err
	}
	if res.GetOutcome() != vouchv1.RefreshOutcome_REFRESH_OUTCOME_NOT_MODIFIED {
		return rows, fmt.Errorf("unchanged refresh: outcome %v (%s), want NOT_MODIFIED", res.GetOutcome(), res.GetError())
	}
	reqs = up.Requests()[seen:]
	if len(reqs) != 1 || !reqs[0].Conditional || reqs[0].Status != 304 {
		return rows, fmt.Errorf("unchanged refresh: upstream saw %+v, want one conditional request answered 304", reqs)
	}
	m1, err := readMetrics(ctx, metrics)
	if err != nil {
		return rows, err
	}
	if mem, err = p.Memory(); err != nil {
		return rows, err
	}
	add("RefreshRepository, unchanged (304)", harness.Seconds(took), "conditional GET → 304, nothing parsed",
		m1.verifyCell(m0), m1.checkCell(m0), mem)

	// (b) A real successor: 1% of the entries got newer versions.
	up.Publish(d.b2)
	seen = len(up.Requests())
	took, res, err = refresh(ctx, conn, o.rpcTimeout)
	if err != nil {
		return rows, err
	}
	if res.GetOutcome() != vouchv1.RefreshOutcome_REFRESH_OUTCOME_UPDATED || res.GetIndexSha256() != d.b2.SHA256 || int(res.GetEntryCount()) != len(d.v2) {
		return rows, fmt.Errorf("1%% refresh: outcome %v, sha256 %s, %d entries (%s); want UPDATED, %s, %d",
			res.GetOutcome(), res.GetIndexSha256(), res.GetEntryCount(), res.GetError(), d.b2.SHA256, len(d.v2))
	}
	reqs = up.Requests()[seen:]
	m2, err := readMetrics(ctx, metrics)
	if err != nil {
		return rows, err
	}
	if mem, err = p.Memory(); err != nil {
		return rows, err
	}
	n := min(o.sample, len(d.changed))
	if err := verifySample(ctx, conn, fixture.Claims(d.v2, d.changed[:n], up.URL()), "1% refresh (new versions)"); err != nil {
		return rows, err
	}
	if err := verifySample(ctx, conn, fixture.Claims(d.v1, d.changed[:n], up.URL()), "1% refresh (replaced versions, history)"); err != nil {
		return rows, err
	}
	download := time.Duration(0)
	if len(reqs) > 0 {
		download = reqs[len(reqs)-1].End.Sub(reqs[0].Start)
	}
	add(fmt.Sprintf("RefreshRepository, %g%% changed", o.change*100), harness.Seconds(took),
		fmt.Sprintf("%d removed + %d added; download %s", len(d.changed), len(d.changed), harness.Seconds(download)),
		m2.verifyCell(m1), m2.checkCell(m1), mem)

	// (c) Restart from the store with the upstream down.
	stop, err := p.Term(time.Minute)
	if err != nil {
		return rows, err
	}
	if err := up.SetMode(fixture.ModeRefused, nil); err != nil {
		return rows, err
	}
	seen = len(up.Requests())
	p, err = harness.Start("vouchd", bin, cfgPath, filepath.Join(sdir, "vouchd-restart.log"))
	if err != nil {
		return rows, err
	}
	ready, err = p.WaitReady(ctx, conn, metrics, o.startTimeout)
	if err != nil {
		return rows, err
	}
	m3, err := readMetrics(ctx, metrics)
	if err != nil {
		return rows, err
	}
	if mem, err = p.Memory(); err != nil {
		return rows, err
	}
	if int(m3.entries) != len(d.v2) {
		return rows, fmt.Errorf("restart: vouch_index_entries = %v, want %d", m3.entries, len(d.v2))
	}
	if err := verifySample(ctx, conn, fixture.Claims(d.v2, d.changed[:n], up.URL()), "restart"); err != nil {
		return rows, err
	}
	if got := len(up.Requests()) - seen; got != 0 {
		return rows, fmt.Errorf("restart: the upstream was down but answered %d requests", got)
	}
	add("restart from store, upstream down → SERVING", harness.Seconds(ready.Serving),
		fmt.Sprintf("/healthz 200 %s; previous process stopped in %s (SIGTERM)", harness.Seconds(ready.Healthz), harness.Seconds(stop)),
		m3.verifyCell(snapshotMetrics{}), "—", mem)
	if _, err := p.Term(time.Minute); err != nil {
		return rows, err
	}
	return rows, up.SetMode(fixture.ModeOK, nil)
}

func refresh(ctx context.Context, conn *grpc.ClientConn, timeout time.Duration) (time.Duration, *vouchv1.ArchRefresh, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	resp, err := vouchv1.NewAdminServiceClient(conn).RefreshRepository(ctx, &vouchv1.RefreshRepositoryRequest{Repository: "bench"})
	took := time.Since(start)
	if err != nil {
		return took, nil, fmt.Errorf("RefreshRepository: %w", err)
	}
	if len(resp.GetResults()) != 1 {
		return took, nil, fmt.Errorf("RefreshRepository: %d results, want 1", len(resp.GetResults()))
	}
	return took, resp.GetResults()[0], nil
}

// verifySample checks that vouchd answers VERIFIED for every claim.
func verifySample(ctx context.Context, conn *grpc.ClientConn, claims []*vouchv1.PackageClaim, what string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := vouchv1.NewBuilderServiceClient(conn).VerifyPackages(ctx, &vouchv1.VerifyPackagesRequest{
		Packages: claims, Options: &vouchv1.VerifyOptions{},
	})
	if err != nil {
		return fmt.Errorf("%s: VerifyPackages: %w", what, err)
	}
	if resp.GetVerdict() != vouchv1.Verdict_VERDICT_VERIFIED {
		for _, r := range resp.GetResults() {
			if r.GetVerdict() != vouchv1.Verdict_VERDICT_VERIFIED {
				return fmt.Errorf("%s: %s %s: %v: %s", what, r.GetName(), r.GetVersion(), r.GetVerdict(), r.GetReason())
			}
		}
		return fmt.Errorf("%s: overall verdict %v", what, resp.GetVerdict())
	}
	return nil
}

func printTable(rows []row) {
	if len(rows) == 0 {
		return
	}
	fmt.Println("| store | step | time | detail | vouchd verify+parse | vouchd diff+checks | RSS after | peak RSS |")
	fmt.Println("|---|---|---:|---|---:|---:|---:|---:|")
	for _, r := range rows {
		cells := []string{r.store, r.step, r.time, r.detail, r.verify, r.check, r.rss, r.peak}
		fmt.Println("| " + strings.Join(cells, " | ") + " |")
	}
	fmt.Println()
	fmt.Println("time: from process start (cold start, restart) or around the RPC (refresh). SERVING is the gRPC health check,")
	fmt.Println("which vouchd updates once a second; /healthz checks the index cache on every request.")
	fmt.Println("verify+parse and diff+checks are vouchd's own histograms (vouch_index_verify_parse_seconds, vouch_index_check_seconds).")
}

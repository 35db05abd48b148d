// Command crash SIGKILLs the real vouchd under attesting load, round after round, and then proves that every attestation a client received has its ledger entry, unchanged, and that the store is intact.
package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	"github.com/vouchdev/vouch/bench/internal/fixture"
	"github.com/vouchdev/vouch/bench/internal/harness"
	vouchv1 "github.com/vouchdev/vouch/proto/vouch/v1"
)

type options struct {
	store, pgDSN       string
	rounds             int
	clients            int
	packages, subjects int
	entries            int
	minLoad, maxLoad   time.Duration
	afterKill          time.Duration
	rpcTimeout         time.Duration
	startLimit         time.Duration
	vouchd             string
	keep               bool
	seed               uint64
}

func main() {
	var o options
	flag.StringVar(&o.store, "store", "sqlite", "store backend: sqlite (one vouchd) or postgres (two replicas on one database; one is killed per round)")
	flag.StringVar(&o.pgDSN, "pg-dsn", harness.DefaultPostgresDSN, "PostgreSQL DSN (a fresh schema is created and dropped)")
	flag.IntVar(&o.rounds, "rounds", 10, "kill rounds")
	flag.IntVar(&o.clients, "clients", 4, "concurrent clients (closed loop, no pacing)")
	flag.IntVar(&o.packages, "packages", 20, "packages per request")
	flag.IntVar(&o.subjects, "subjects", 1, "subjects per request (attestations = 2 per subject)")
	flag.IntVar(&o.entries, "entries", 2000, "entries in the generated index")
	flag.DurationVar(&o.minLoad, "min-load", 2*time.Second, "shortest load before the kill")
	flag.DurationVar(&o.maxLoad, "max-load", 5*time.Second, "longest load before the kill")
	flag.DurationVar(&o.afterKill, "after-kill", time.Second, "postgres: how long the load goes on against the surviving replica after the kill")
	flag.DurationVar(&o.rpcTimeout, "rpc-timeout", 10*time.Second, "deadline of each call")
	flag.DurationVar(&o.startLimit, "start-timeout", time.Minute, "how long a (re)started vouchd may take to become ready")
	flag.StringVar(&o.vouchd, "vouchd", "", "use this vouchd binary instead of building ./cmd/vouchd")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory (records file, logs, database)")
	flag.Uint64Var(&o.seed, "seed", 0, "seed of the kill times and victims (0: random)")
	flag.Parse()
	switch {
	case o.store != "sqlite" && o.store != "postgres":
		usage("-store %q: want sqlite or postgres", o.store)
	case o.rounds < 1 || o.clients < 1 || o.packages < 1 || o.subjects < 1 || o.entries < o.packages:
		usage("want -rounds, -clients, -packages, -subjects >= 1 and -entries >= -packages")
	case o.minLoad <= 0 || o.maxLoad < o.minLoad:
		usage("want 0 < -min-load <= -max-load")
	}
	if o.seed == 0 {
		o.seed = mrand.Uint64()
	}
	os.Exit(harness.Main(func(ctx context.Context) error { return run(ctx, o) }))
}

func usage(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "crash: "+format+"\n", args...)
	os.Exit(2)
}

// replica is one vouchd with fixed addresses; proc changes at each restart.
type replica struct {
	idx             int
	listen, metrics string
	cfgPath         string
	conn            *grpc.ClientConn
	proc            *harness.Proc
	starts          int
	logs            []string
}

// roundStats is one kill round.
type roundStats struct {
	round          int
	load           time.Duration
	victim         int
	exit           string
	sent, attested []int // per replica
	errs           []int // per replica
	afterKill      int   // attested by the survivors after the kill
	restart        harness.Ready
	integrity      string
}

// env is the state shared by the load goroutines.
type env struct {
	o        options
	claims   []*vouchv1.PackageClaim
	replicas []*replica
	rec      *recorder

	mu         sync.Mutex
	failed     map[string]string // subject digest of a failed request → gRPC code
	violations []string
}

func (e *env) violate(format string, args ...any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.violations = append(e.violations, fmt.Sprintf(format, args...))
}

func run(ctx context.Context, o options) error {
	fmt.Println(harness.Header(ctx, "vouch bench: crash"))
	nrep := 1
	if o.store == "postgres" {
		nrep = 2
	}
	fmt.Printf("store %s, %d replica(s), %d rounds, %d clients, %d packages × %d subject(s) per request, load %s-%s before each SIGKILL, seed %d\n\n",
		o.store, nrep, o.rounds, o.clients, o.packages, o.subjects, o.minLoad, o.maxLoad, o.seed)
	dir, err := harness.TempDir("vouch-crash-", o.keep)
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
	entries := fixture.Entries(o.entries, o.seed)
	raw, err := fixture.SignIndex(keys.Repo, entries, "bench crash")
	if err != nil {
		return err
	}
	repoURL, err := fixture.WriteFileRepo(filepath.Join(dir, "repo"), raw)
	if err != nil {
		return err
	}
	pos := make([]int, o.packages)
	for i := range pos {
		pos[i] = i * (o.entries / o.packages)
	}
	dbPath := filepath.Join(dir, "vouch.db")
	storeURL := "sqlite://" + dbPath
	if o.store == "postgres" {
		if storeURL, err = harness.PostgresSchema(ctx, o.pgDSN); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		return fmt.Errorf("work directory: %w", err)
	}
	rec, err := openRecorder(filepath.Join(dir, "received.jsonl"))
	if err != nil {
		return err
	}
	defer rec.close()
	e := &env{o: o, claims: fixture.Claims(entries, pos, repoURL), rec: rec, failed: map[string]string{}}
	for i := range nrep {
		r := &replica{idx: i, cfgPath: filepath.Join(dir, fmt.Sprintf("vouch-%d.yaml", i))}
		if r.listen, err = harness.FreeAddr(); err != nil {
			return err
		}
		if r.metrics, err = harness.FreeAddr(); err != nil {
			return err
		}
		if err := fixture.NewConfig(r.listen, r.metrics, storeURL, keys, repoURL, time.Hour, 24*time.Hour).Write(r.cfgPath); err != nil {
			return err
		}
		if r.conn, err = harness.Dial(ctx, r.listen); err != nil {
			return err
		}
		defer r.conn.Close()
		e.replicas = append(e.replicas, r)
	}
	for _, r := range e.replicas {
		if _, err := r.start(ctx, bin, dir, o.startLimit); err != nil {
			return fmt.Errorf("first start: %w", err)
		}
	}

	rnd := mrand.New(mrand.NewPCG(o.seed, 0x6b696c6c))
	var rounds []roundStats
	for round := 1; round <= o.rounds; round++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		rs, err := e.round(ctx, round, rnd, bin, dir, dbPath)
		rounds = append(rounds, rs)
		if err != nil {
			printRounds(e, rounds)
			return fmt.Errorf("round %d: %w", round, err)
		}
		fmt.Printf("round %2d: %s load, killed replica %d (%s), %v attested, restarted in %s\n",
			round, harness.Seconds(rs.load), rs.victim, rs.exit, sum(rs.attested), harness.Seconds(rs.restart.Serving))
	}
	printRounds(e, rounds)
	return e.prove(ctx, storeURL, dbPath)
}

func sum(xs []int) int {
	n := 0
	for _, x := range xs {
		n += x
	}
	return n
}

func (r *replica) start(ctx context.Context, bin, dir string, limit time.Duration) (harness.Ready, error) {
	r.starts++
	log := filepath.Join(dir, "logs", fmt.Sprintf("replica%d-start%02d.log", r.idx, r.starts))
	r.logs = append(r.logs, log)
	p, err := harness.Start(fmt.Sprintf("vouchd replica %d", r.idx), bin, r.cfgPath, log)
	if err != nil {
		return harness.Ready{}, err
	}
	r.proc = p
	return p.WaitReady(ctx, r.conn, r.metrics, limit)
}

// round runs the load, kills the victim, checks the crash state and
// restarts the victim.
func (e *env) round(ctx context.Context, round int, rnd *mrand.Rand, bin, dir, dbPath string) (roundStats, error) {
	n := len(e.replicas)
	rs := roundStats{round: round, sent: make([]int, n), attested: make([]int, n), errs: make([]int, n)}
	for _, r := range e.replicas {
		if r.proc.Exited() {
			return rs, fmt.Errorf("replica %d exited by itself (%s):\n%s", r.idx, r.proc.ExitStatus(), r.proc.TailLog(20))
		}
	}
	rs.load = e.o.minLoad + time.Duration(rnd.Int64N(int64(e.o.maxLoad-e.o.minLoad)+1))
	rs.victim = rnd.IntN(n)
	victim := e.replicas[rs.victim]

	lctx, stop := context.WithCancel(ctx)
	defer stop()
	var afterKill atomic.Int64
	var killedFlag atomic.Bool
	var mu sync.Mutex
	var wg sync.WaitGroup
	for c := range e.o.clients {
		wg.Go(func() {
			sent, att, errs := make([]int, n), make([]int, n), make([]int, n)
			for i := c; lctx.Err() == nil; i++ {
				r := e.replicas[i%n]
				if r == victim && victim.proc.Exited() {
					if n == 1 {
						break
					}
					continue
				}
				sent[r.idx]++
				ok := e.call(lctx, round, r)
				if ok {
					att[r.idx]++
					if killedFlag.Load() {
						afterKill.Add(1)
					}
				} else if lctx.Err() == nil {
					errs[r.idx]++
					time.Sleep(20 * time.Millisecond)
				}
			}
			mu.Lock()
			for i := range n {
				rs.sent[i] += sent[i]
				rs.attested[i] += att[i]
				rs.errs[i] += errs[i]
			}
			mu.Unlock()
		})
	}
	select {
	case <-ctx.Done():
		return rs, ctx.Err()
	case <-time.After(rs.load):
	}
	if err := victim.proc.Kill(10 * time.Second); err != nil {
		return rs, err
	}
	rs.exit = victim.proc.ExitStatus()
	killedFlag.Store(true)
	if n > 1 {
		select {
		case <-ctx.Done():
			return rs, ctx.Err()
		case <-time.After(e.o.afterKill):
		}
	}
	stop()
	wg.Wait()
	rs.afterKill = int(afterKill.Load())
	if n > 1 && rs.afterKill == 0 {
		e.violate("round %d: the surviving replica issued no attestation in the %s after the kill", round, e.o.afterKill)
	}
	for i, r := range e.replicas {
		if r != victim && rs.errs[i] > 0 {
			e.violate("round %d: the surviving replica %d answered %d RPC errors", round, i, rs.errs[i])
		}
		if r != victim && r.proc.Exited() {
			return rs, fmt.Errorf("the surviving replica %d exited (%s)", i, r.proc.ExitStatus())
		}
	}
	if e.o.store == "sqlite" {
		res, err := integrityOfCopy(ctx, dbPath, filepath.Join(dir, fmt.Sprintf("check-%02d", round)))
		if err != nil {
			return rs, err
		}
		rs.integrity = res
		if res != "ok" {
			e.violate("round %d: the database left by SIGKILL fails integrity_check: %s", round, res)
		}
	}
	ready, err := victim.start(ctx, bin, dir, e.o.startLimit)
	if err != nil {
		e.violate("round %d: replica %d did not restart cleanly: %v", round, victim.idx, err)
		return rs, err
	}
	rs.restart = ready
	return rs, nil
}

// call sends one attesting request to r and records what came back. It
// reports whether attestations were received.
func (e *env) call(ctx context.Context, round int, r *replica) bool {
	req := &vouchv1.VerifyPackagesRequest{Packages: e.claims, Options: &vouchv1.VerifyOptions{Attest: true}}
	want := map[string]bool{}
	var first string
	for range e.o.subjects {
		var b [32]byte
		_, _ = rand.Read(b[:])
		d := hex.EncodeToString(b[:])
		req.Subjects = append(req.Subjects, &vouchv1.Subject{Name: "registry.example/bench-crash", Digest: map[string]string{"sha256": d}})
		want["sha256:"+d] = true
		if first == "" {
			first = "sha256:" + d
		}
	}
	cctx, cancel := context.WithTimeout(ctx, e.o.rpcTimeout)
	defer cancel()
	resp, err := vouchv1.NewBuilderServiceClient(r.conn).VerifyPackages(cctx, req)
	if err != nil {
		e.mu.Lock()
		for d := range want {
			e.failed[d] = status.Code(err).String()
		}
		e.mu.Unlock()
		return false
	}
	if resp.GetVerdict() != vouchv1.Verdict_VERDICT_VERIFIED {
		e.violate("round %d: replica %d answered %v for packages listed in the index", round, r.idx, resp.GetVerdict())
		return false
	}
	atts := resp.GetAttestations()
	if resp.GetLedgerId() == "" || len(atts) != 2*e.o.subjects {
		e.violate("round %d: replica %d: VERIFIED with ledger id %q and %d attestations (want an id and %d)", round, r.idx, resp.GetLedgerId(), len(atts), 2*e.o.subjects)
		return false
	}
	rec := record{Round: round, Replica: r.idx, LedgerID: resp.GetLedgerId(), Subject: first}
	for _, a := range atts {
		if !want[a.GetSubjectDigest()] {
			e.violate("round %d: attestation for subject %s, which the request did not name", round, a.GetSubjectDigest())
		}
		sum := sha256.Sum256(a.GetBundle())
		rec.Attestations = append(rec.Attestations, recordedAttestation{
			Subject: a.GetSubjectDigest(), PredicateType: a.GetPredicateType(),
			StatementSHA256: a.GetStatementSha256(), BundleSHA256: hex.EncodeToString(sum[:]),
		})
	}
	for d := range want {
		if d != first {
			rec.Others = append(rec.Others, d)
		}
	}
	slices.Sort(rec.Others)
	if err := e.rec.append(rec); err != nil {
		e.violate("recording a received attestation: %v", err)
	}
	return true
}

func printRounds(e *env, rounds []roundStats) {
	n := len(e.replicas)
	fmt.Println("\n## Rounds")
	fmt.Println()
	head := "| round | load | victim | victim exit | requests | attested | RPC errors victim | RPC errors survivor | survivor attested after kill | restart: /healthz | restart: SERVING |"
	sep := "|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|"
	if e.o.store == "sqlite" {
		head += " integrity_check after kill |"
		sep += "---|"
	}
	fmt.Println(head)
	fmt.Println(sep)
	for _, r := range rounds {
		surv := 0
		for i := range n {
			if i != r.victim {
				surv += r.errs[i]
			}
		}
		survCell, afterCell := "—", "—"
		if n > 1 {
			survCell, afterCell = fmt.Sprint(surv), fmt.Sprint(r.afterKill)
		}
		line := fmt.Sprintf("| %d | %s | %d | %s | %d | %d | %d | %s | %s | %s | %s |", r.round, harness.Seconds(r.load), r.victim, r.exit,
			sum(r.sent), sum(r.attested), r.errs[r.victim], survCell, afterCell, harness.Seconds(r.restart.Healthz), harness.Seconds(r.restart.Serving))
		if e.o.store == "sqlite" {
			line += " " + r.integrity + " |"
		}
		fmt.Println(line)
	}
	fmt.Println()
	fmt.Println("requests include calls cancelled when a round ends. RPC errors victim: calls cut by the SIGKILL;")
	fmt.Println("survivor (postgres): must be 0, and the survivor must keep attesting after the kill.")
}

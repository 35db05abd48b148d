// Command loadtool is the small helper behind bench/throughput.sh and bench/soak.sh: free ports, ghz JSON summaries, /metrics scrapes, PostgreSQL schema clean-up and the Markdown reports.
package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

const usage = `usage: loadtool COMMAND [ARGS]

  ports N                   print N free loopback TCP ports, one per line
  summary FILE              one ghz JSON report (optionally .gz) as a tab-separated line:
                            rps p50_ms p90_ms p99_ms count errors codes
  metric URL NAME [K=V...]  sum of the samples of metric NAME at a Prometheus
                            /metrics URL whose labels match every K=V
  scrape URL METHOD         one /metrics sample as "requests dur_sum dur_count cpu_seconds":
                            all gRPC requests, METHOD's latency sum and count, process CPU
  pg-check DSN              fail unless PostgreSQL at DSN answers
  pg-drop DSN SCHEMA        DROP SCHEMA IF EXISTS SCHEMA CASCADE
  report FILE.tsv           Markdown tables and target verdicts for bench/throughput.sh
  soak-report FILE.csv      Markdown table and RSS slope for bench/soak.sh
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	args := os.Args[2:]
	switch os.Args[1] {
	case "ports":
		err = cmdPorts(args)
	case "summary":
		err = cmdSummary(args)
	case "metric":
		err = cmdMetric(args)
	case "scrape":
		err = cmdScrape(args)
	case "pg-check":
		err = cmdPG(args, false)
	case "pg-drop":
		err = cmdPG(args, true)
	case "report":
		err = cmdReport(args)
	case "soak-report":
		err = cmdSoakReport(args)
	default:
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "loadtool %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func cmdPorts(args []string) error {
	if len(args) != 1 {
		return errors.New("want: ports N")
	}
	n, err := strconv.Atoi(args[0])
	if err != nil || n < 1 {
		return fmt.Errorf("bad count %q", args[0])
	}
	// Hold every listener until all are bound so the ports are distinct.
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		ls = append(ls, l)
	}
	for _, l := range ls {
		fmt.Println(l.Addr().(*net.TCPAddr).Port)
	}
	return nil
}

// ghzReport is the part of ghz's JSON report (--format json) used here;
// durations are nanoseconds.
type ghzReport struct {
	Count          uint64         `json:"count"`
	Total          int64          `json:"total"`
	Rps            float64        `json:"rps"`
	StatusCodeDist map[string]int `json:"statusCodeDistribution"`
	ErrorDist      map[string]int `json:"errorDistribution"`
	Latency        []struct {
		Percentage int   `json:"percentage"`
		Latency    int64 `json:"latency"`
	} `json:"latencyDistribution"`
}

// summary is what the reports show of one ghz run.
type summary struct {
	RPS           float64
	P50, P90, P99 float64 // milliseconds, over successful calls (ghz's rule)
	Count, Errors int
	Codes         string // e.g. "OK=1200,Unavailable=3"
}

func readReport(path string) (summary, error) {
	f, err := os.Open(path)
	if err != nil {
		return summary{}, err
	}
	defer func() { _ = f.Close() }()
	var r io.Reader = bufio.NewReaderSize(f, 1<<20)
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(r)
		if err != nil {
			return summary{}, fmt.Errorf("%s: %w", path, err)
		}
		defer func() { _ = zr.Close() }()
		r = zr
	}
	var rep ghzReport
	if err := json.NewDecoder(r).Decode(&rep); err != nil {
		return summary{}, fmt.Errorf("%s: not a ghz JSON report: %w", path, err)
	}
	s := summary{RPS: rep.Rps, Count: int(rep.Count), P50: math.NaN(), P90: math.NaN(), P99: math.NaN()}
	for _, l := range rep.Latency {
		ms := float64(l.Latency) / 1e6
		switch l.Percentage {
		case 50:
			s.P50 = ms
		case 90:
			s.P90 = ms
		case 99:
			s.P99 = ms
		}
	}
	// Every call that did not end OK is an error, whatever its status.
	s.Errors = s.Count - rep.StatusCodeDist["OK"]
	codes := make([]string, 0, len(rep.StatusCodeDist))
	for c := range rep.StatusCodeDist {
		codes = append(codes, c)
	}
	sort.Slice(codes, func(i, j int) bool {
		return rep.StatusCodeDist[codes[i]] > rep.StatusCodeDist[codes[j]] ||
			rep.StatusCodeDist[codes[i]] == rep.StatusCodeDist[codes[j]] && codes[i] < codes[j]
	})
	for i, c := range codes {
		codes[i] = fmt.Sprintf("%s=%d", c, rep.StatusCodeDist[c])
	}
	s.Codes = strings.Join(codes, ",")
	if s.Codes == "" {
		s.Codes = "-"
	}
	return s, nil
}

func cmdSummary(args []string) error {
	if len(args) != 1 {
		return errors.New("want: summary FILE")
	}
	s, err := readReport(args[0])
	if err != nil {
		return err
	}
	fmt.Printf("%.1f\t%s\t%s\t%s\t%d\t%d\t%s\n", s.RPS, fmtMS(s.P50), fmtMS(s.P90), fmtMS(s.P99), s.Count, s.Errors, s.Codes)
	return nil
}

func fmtMS(v float64) string {
	if math.IsNaN(v) {
		return "-"
	}
	return strconv.FormatFloat(v, 'f', 3, 64)
}

func cmdMetric(args []string) error {
	if len(args) < 2 {
		return errors.New("want: metric URL NAME [K=V...]")
	}
	want := map[string]string{}
	for _, kv := range args[2:] {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return fmt.Errorf("label filter %q: want K=V", kv)
		}
		want[k] = v
	}
	body, err := getMetrics(args[0])
	if err != nil {
		return err
	}
	sum, found, err := sumMetric(bytes.NewReader(body), args[1], want)
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("%s: no sample of %s matching %v", args[0], args[1], want)
	}
	fmt.Println(strconv.FormatFloat(sum, 'f', -1, 64))
	return nil
}

func getMetrics(url string) ([]byte, error) {
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return io.ReadAll(resp.Body)
}

func cmdScrape(args []string) error {
	if len(args) != 2 {
		return errors.New("want: scrape URL METHOD")
	}
	body, err := getMetrics(args[0])
	if err != nil {
		return err
	}
	method := map[string]string{"method": args[1]}
	var out []string
	for _, q := range []struct {
		name   string
		labels map[string]string
	}{
		{"vouch_grpc_requests_total", nil},
		{"vouch_grpc_request_duration_seconds_sum", method},
		{"vouch_grpc_request_duration_seconds_count", method},
		{"process_cpu_seconds_total", nil},
	} {
		v, _, err := sumMetric(bytes.NewReader(body), q.name, q.labels)
		if err != nil {
			return err
		}
		out = append(out, strconv.FormatFloat(v, 'f', -1, 64))
	}
	fmt.Println(strings.Join(out, " "))
	return nil
}

// sumMetric adds up the samples of name in Prometheus text format whose
// labels include every pair in want.
func sumMetric(r io.Reader, name string, want map[string]string) (float64, bool, error) {
	var sum float64
	found := false
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' || !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		labels := map[string]string{}
		switch {
		case strings.HasPrefix(rest, "{"):
			end := strings.LastIndex(rest, "}")
			if end < 0 {
				return 0, false, fmt.Errorf("bad sample line %q", line)
			}
			labels = parseLabels(rest[1:end])
			rest = rest[end+1:]
		case strings.HasPrefix(rest, " "):
		default:
			continue // another metric sharing the prefix
		}
		match := true
		for k, v := range want {
			if labels[k] != v {
				match = false
				break
			}
		}
		if !match {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			return 0, false, fmt.Errorf("bad sample line %q", line)
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return 0, false, fmt.Errorf("bad sample line %q: %w", line, err)
		}
		sum += v
		found = true
	}
	return sum, found, sc.Err()
}

// parseLabels reads `a="x",b="y"` (label values as Prometheus escapes them).
func parseLabels(s string) map[string]string {
	out := map[string]string{}
	for len(s) > 0 {
		eq := strings.IndexByte(s, '=')
		if eq < 0 || eq+1 >= len(s) || s[eq+1] != '"' {
			return out
		}
		k := strings.TrimSpace(s[:eq])
		var b strings.Builder
		i := eq + 2
		for ; i < len(s) && s[i] != '"'; i++ {
			if s[i] == '\\' && i+1 < len(s) {
				i++
				if s[i] == 'n' {
					b.WriteByte('\n')
					continue
				}
			}
			b.WriteByte(s[i])
		}
		out[k] = b.String()
		s = strings.TrimPrefix(s[min(i+1, len(s)):], ",")
	}
	return out
}

func cmdPG(args []string, drop bool) error {
	if (drop && len(args) != 2) || (!drop && len(args) != 1) {
		return errors.New("want: pg-check DSN | pg-drop DSN SCHEMA")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, args[0])
	if err != nil {
		// pgx may quote the DSN, password included: do not print it.
		return errors.New("cannot connect to PostgreSQL (check the DSN and that the server runs)")
	}
	defer func() { _ = conn.Close(ctx) }()
	if !drop {
		var one int
		return conn.QueryRow(ctx, "SELECT 1").Scan(&one)
	}
	_, err = conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{args[1]}.Sanitize()+" CASCADE")
	return err
}

// cell is one line of bench/throughput.sh's results file.
type cell struct {
	Store       string // "sqlite" or "postgres"
	Replicas    int
	Call        string // health, verify, attest
	Packages    int    // 0 for health
	Concurrency int
	Connections int
	File        string
	Split       string // requests per replica during the cell, "a/b", or "-"
	ServerMS    string // mean server-side latency of the method, ms
	CPUMS       string // vouchd CPU time per call (all replicas), ms
	GhzCPUMS    string // ghz's own CPU time per call, ms ("-" when not measured)
	summary
}

func readCells(path string) ([]cell, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	r := csv.NewReader(f)
	r.Comma = '\t'
	r.FieldsPerRecord = -1 // 10 columns, 11 with ghz_cpu_ms
	recs, err := r.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var cells []cell
	for i, rec := range recs {
		if i == 0 && rec[0] == "store" {
			continue // header
		}
		if len(rec) != 10 && len(rec) != 11 {
			return nil, fmt.Errorf("%s: line %d has %d fields, want 10 or 11", path, i+1, len(rec))
		}
		var c cell
		c.Store, c.Call, c.File, c.Split, c.ServerMS, c.CPUMS = rec[0], rec[2], rec[6], rec[7], rec[8], rec[9]
		c.GhzCPUMS = "-"
		if len(rec) == 11 {
			c.GhzCPUMS = rec[10]
		}
		ints := []*int{nil, &c.Replicas, nil, &c.Packages, &c.Concurrency, &c.Connections}
		for j, p := range ints {
			if p == nil {
				continue
			}
			if *p, err = strconv.Atoi(rec[j]); err != nil {
				return nil, fmt.Errorf("%s line %d: field %d: %w", path, i+1, j+1, err)
			}
		}
		if c.summary, err = readReport(c.File); err != nil {
			return nil, err
		}
		cells = append(cells, c)
	}
	return cells, nil
}

func callName(c cell) string {
	switch c.Call {
	case "health":
		return "Health/Check"
	case "verify":
		return "VerifyPackages"
	case "attest":
		return "VerifyPackages + attest"
	}
	return c.Call
}

func cmdReport(args []string) error {
	if len(args) != 1 {
		return errors.New("want: report FILE.tsv")
	}
	cells, err := readCells(args[0])
	if err != nil {
		return err
	}
	if len(cells) == 0 {
		return errors.New("no results")
	}
	return writeReport(os.Stdout, cells)
}

// writeReport writes the Markdown tables and the target lines of cells.
func writeReport(w io.Writer, cells []cell) error {
	// Health baseline per store and concurrency, from the same run.
	type key struct {
		store string
		c     int
	}
	base := map[key]float64{}
	for _, c := range cells {
		if c.Call == "health" {
			base[key{c.Store, c.Concurrency}] = c.RPS
		}
	}
	var order []string
	seen := map[string]bool{}
	for _, c := range cells {
		if !seen[c.Store] {
			seen[c.Store] = true
			order = append(order, c.Store)
		}
	}
	for _, st := range order {
		var rows []cell
		for _, c := range cells {
			if c.Store == st {
				rows = append(rows, c)
			}
		}
		multi := rows[0].Replicas > 1
		title := "SQLite, 1 vouchd"
		if st == "postgres" {
			title = fmt.Sprintf("PostgreSQL, %d vouchd replicas behind an L4 round-robin proxy", rows[0].Replicas)
		}
		fmt.Fprintf(w, "\n### %s\n\n", title)
		hdr := "| call | packages | concurrency | connections | RPC/s | p50 ms | p90 ms | p99 ms | errors | status codes | × health | server ms | vouchd CPU ms/call | ghz CPU ms/call |"
		sep := "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|"
		if multi {
			hdr += " requests per replica |"
			sep += "---|"
		}
		fmt.Fprintln(w, hdr)
		fmt.Fprintln(w, sep)
		for _, c := range rows {
			pk := "-"
			if c.Packages > 0 {
				pk = strconv.Itoa(c.Packages)
			}
			ratio := "-"
			if b := base[key{c.Store, c.Concurrency}]; b > 0 {
				ratio = fmt.Sprintf("%.3f", c.RPS/b)
			}
			line := fmt.Sprintf("| %s | %s | %d | %d | %s | %s | %s | %s | %d | %s | %s | %s | %s | %s |",
				callName(c), pk, c.Concurrency, c.Connections, thousands(c.RPS), fmtMS2(c.P50), fmtMS2(c.P90), fmtMS2(c.P99),
				c.Errors, c.Codes, ratio, c.ServerMS, c.CPUMS, c.GhzCPUMS)
			if multi {
				line += " " + c.Split + " |"
			}
			fmt.Fprintln(w, line)
		}
	}

	fmt.Fprintln(w, "\nRPC/s, latencies, errors and status codes are ghz's (client side; latencies over successful calls);"+
		" × health divides by the health check's RPC/s at the same concurrency in this run;"+
		" server ms is the mean of vouch_grpc_request_duration_seconds for the method during the cell;"+
		" vouchd CPU ms/call is process_cpu_seconds_total over the calls served (all replicas);"+
		" ghz CPU ms/call is ghz's user + system time over its calls.")
	fmt.Fprintf(w, "\n### Targets (SQLite, 50 packages per request, concurrency 50)\n\n")
	find := func(call string) *cell {
		for i := range cells {
			c := &cells[i]
			if c.Store == "sqlite" && c.Call == call && c.Packages == 50 && c.Concurrency == 50 {
				return c
			}
		}
		return nil
	}
	verdict := func(ok bool) string {
		if ok {
			return "PASS"
		}
		return "MISS"
	}
	// budget states what the machine's cores allow at the CPU cost
	// measured per call: vouchd's and ghz's together, as they share them.
	budget := func(c *cell, target float64) {
		v, err1 := strconv.ParseFloat(c.CPUMS, 64)
		g, err2 := strconv.ParseFloat(c.GhzCPUMS, 64)
		if err1 != nil || err2 != nil || v+g <= 0 {
			return
		}
		cores := float64(runtime.NumCPU())
		fmt.Fprintf(w, "      CPU per call: vouchd %.3f ms + ghz %.3f ms = %.3f ms; %d cores allow at most %s RPC/s;"+
			" %s RPC/s needs at most %.3f ms per call, ghz alone takes %.0f%% of that\n",
			v, g, v+g, int(cores), thousands(cores*1000/(v+g)), thousands(target), cores*1000/target, 100*g/(cores*1000/target))
	}
	fmt.Fprintln(w, "```")
	if c := find("verify"); c != nil {
		ok := c.RPS >= 10000 && c.Errors == 0
		fmt.Fprintf(w, "%s  VerifyPackages, 50 packages, no attestation, c=50: %s RPC/s (target >= 10,000), %d errors (target 0)\n",
			verdict(ok), thousands(c.RPS), c.Errors)
		budget(c, 10000)
	} else {
		fmt.Fprintln(w, "SKIP  VerifyPackages, 50 packages, no attestation, c=50: not measured in this run")
	}
	if c := find("attest"); c != nil {
		ok := c.RPS >= 1500 && !math.IsNaN(c.P99) && c.P99 <= 50 && c.Errors == 0
		fmt.Fprintf(w, "%s  VerifyPackages + attestation + ledger write on SQLite, 50 packages, c=50: %s RPC/s (target >= 1,500), p99 %s ms (target <= 50), %d errors (target 0)\n",
			verdict(ok), thousands(c.RPS), fmtMS2(c.P99), c.Errors)
		budget(c, 1500)
	} else {
		fmt.Fprintln(w, "SKIP  VerifyPackages + attestation on SQLite, 50 packages, c=50: not measured in this run")
	}
	total, bad := 0, 0
	for _, c := range cells {
		total += c.Errors
		if c.Errors > 0 {
			bad++
		}
	}
	fmt.Fprintf(w, "%s  zero errors in every cell: %d errors in all, %d of %d cells with errors\n", verdict(total == 0), total, bad, len(cells))
	fmt.Fprintln(w, "```")
	return nil
}

func fmtMS2(v float64) string {
	if math.IsNaN(v) {
		return "-"
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

// thousands formats v rounded to an integer with comma separators.
func thousands(v float64) string {
	s := strconv.FormatInt(int64(math.Round(v)), 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// soakRow is one line of bench/soak.sh's CSV.
type soakRow struct {
	vals map[string]string
	num  map[string]float64
}

// soakColumns is the CSV header bench/soak.sh writes.
var soakColumns = []string{"minute", "elapsed_min", "target_rps", "rps", "count", "errors", "p50_ms", "p99_ms", "rss_mb", "goroutines", "open_fds", "db_mb", "wal_mb"}

func cmdSoakReport(args []string) error {
	if len(args) != 1 {
		return errors.New("want: soak-report FILE.csv")
	}
	f, err := os.Open(args[0])
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return fmt.Errorf("%s: %w", args[0], err)
	}
	if len(recs) < 2 {
		return fmt.Errorf("%s: no rows", args[0])
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	for _, c := range soakColumns {
		if _, ok := col[c]; !ok {
			return fmt.Errorf("%s: missing column %q", args[0], c)
		}
	}
	var rows []soakRow
	for _, rec := range recs[1:] {
		r := soakRow{vals: map[string]string{}, num: map[string]float64{}}
		for _, c := range soakColumns {
			v := rec[col[c]]
			r.vals[c] = v
			if n, err := strconv.ParseFloat(v, 64); err == nil {
				r.num[c] = n
			} else {
				r.num[c] = math.NaN()
			}
		}
		rows = append(rows, r)
	}
	w := os.Stdout
	fmt.Fprintln(w, "| minute | target RPC/s | RPC/s | calls | errors | p50 ms | p99 ms | RSS MB | goroutines | open fds | SQLite MB | WAL MB |")
	fmt.Fprintln(w, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	errs := 0.0
	for _, r := range rows {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			r.vals["minute"], r.vals["target_rps"], thousands(r.num["rps"]), r.vals["count"], r.vals["errors"],
			r.vals["p50_ms"], r.vals["p99_ms"], r.vals["rss_mb"], r.vals["goroutines"], r.vals["open_fds"], r.vals["db_mb"], r.vals["wal_mb"])
		if !math.IsNaN(r.num["errors"]) {
			errs += r.num["errors"]
		}
	}
	fmt.Fprintln(w)
	var xs, ys []float64
	for _, r := range rows[1:] {
		xs = append(xs, r.num["elapsed_min"])
		ys = append(ys, r.num["rss_mb"])
	}
	if slope, ok := leastSquares(xs, ys); ok {
		fmt.Fprintf(w, "RSS slope over minutes 2-%d (least squares): %+.3f MB/minute\n", len(rows), slope)
	} else {
		fmt.Fprintf(w, "RSS slope: n/a (needs at least 3 minutes; have %d)\n", len(rows))
	}
	first, last := rows[0], rows[len(rows)-1]
	fmt.Fprintf(w, "RSS %s -> %s MB, goroutines %s -> %s, open fds %s -> %s, errors %d\n",
		first.vals["rss_mb"], last.vals["rss_mb"], first.vals["goroutines"], last.vals["goroutines"],
		first.vals["open_fds"], last.vals["open_fds"], int(errs))
	return nil
}

// leastSquares is the slope of the least-squares line through (xs, ys);
// false with fewer than two distinct x values.
func leastSquares(xs, ys []float64) (float64, bool) {
	n := float64(len(xs))
	if len(xs) < 2 {
		return 0, false
	}
	var sx, sy float64
	for i := range xs {
		sx += xs[i]
		sy += ys[i]
	}
	mx, my := sx/n, sy/n
	var sxy, sxx float64
	for i := range xs {
		sxy += (xs[i] - mx) * (ys[i] - my)
		sxx += (xs[i] - mx) * (xs[i] - mx)
	}
	if sxx == 0 || math.IsNaN(sxy) {
		return 0, false
	}
	return sxy / sxx, true
}

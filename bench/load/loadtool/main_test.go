package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSumMetric(t *testing.T) {
	const text = `# HELP vouch_grpc_requests_total gRPC requests by method and status code.
# TYPE vouch_grpc_requests_total counter
vouch_grpc_requests_total{code="OK",method="/grpc.health.v1.Health/Check"} 3
vouch_grpc_requests_total{code="OK",method="/vouch.v1.BuilderService/VerifyPackages"} 200
vouch_grpc_requests_total{code="InvalidArgument",method="/vouch.v1.BuilderService/VerifyPackages"} 2
vouch_grpc_requests_totally_other 99
go_goroutines 19
`
	for _, tc := range []struct {
		name  string
		want  map[string]string
		sum   float64
		found bool
	}{
		{"vouch_grpc_requests_total", nil, 205, true},
		{"vouch_grpc_requests_total", map[string]string{"method": "/vouch.v1.BuilderService/VerifyPackages"}, 202, true},
		{"vouch_grpc_requests_total", map[string]string{"code": "OK", "method": "/vouch.v1.BuilderService/VerifyPackages"}, 200, true},
		{"vouch_grpc_requests_total", map[string]string{"code": "Internal"}, 0, false},
		{"go_goroutines", nil, 19, true},
	} {
		sum, found, err := sumMetric(strings.NewReader(text), tc.name, tc.want)
		if err != nil || sum != tc.sum || found != tc.found {
			t.Errorf("sumMetric(%s, %v) = %v, %v, %v; want %v, %v", tc.name, tc.want, sum, found, err, tc.sum, tc.found)
		}
	}
}

func TestParseLabels(t *testing.T) {
	got := parseLabels(`a="x",b="with \"quote\" and \\ slash",c=""`)
	if got["a"] != "x" || got["b"] != `with "quote" and \ slash` || got["c"] != "" || len(got) != 3 {
		t.Errorf("parseLabels = %q", got)
	}
}

func TestReadReport(t *testing.T) {
	const rep = `{"count":10,"total":1000000000,"rps":10.0,
"statusCodeDistribution":{"OK":7,"Unavailable":2,"DeadlineExceeded":1},
"errorDistribution":{"x":3},
"latencyDistribution":[{"percentage":50,"latency":1500000},{"percentage":90,"latency":2000000},{"percentage":99,"latency":9000000}],
"details":[{"latency":1}]}`
	p := filepath.Join(t.TempDir(), "r.json")
	if err := os.WriteFile(p, []byte(rep), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := readReport(p)
	if err != nil {
		t.Fatal(err)
	}
	if s.RPS != 10 || s.Count != 10 || s.Errors != 3 || s.P50 != 1.5 || s.P90 != 2 || s.P99 != 9 {
		t.Errorf("readReport = %+v", s)
	}
	if s.Codes != "OK=7,Unavailable=2,DeadlineExceeded=1" {
		t.Errorf("codes = %q", s.Codes)
	}
}

func TestLeastSquares(t *testing.T) {
	if s, ok := leastSquares([]float64{1, 2, 3, 4}, []float64{10, 12, 14, 16}); !ok || math.Abs(s-2) > 1e-9 {
		t.Errorf("slope = %v, %v; want 2", s, ok)
	}
	if _, ok := leastSquares([]float64{1}, []float64{1}); ok {
		t.Error("one point has no slope")
	}
}

func TestThousands(t *testing.T) {
	for in, want := range map[float64]string{0: "0", 999.4: "999", 1000: "1,000", 1234567.8: "1,234,568"} {
		if got := thousands(in); got != want {
			t.Errorf("thousands(%v) = %q; want %q", in, got, want)
		}
	}
}

// TestReportCPUBudget: a results file with ghz's CPU column gets it in the
// table and a CPU budget under each target line; one without it still reads.
func TestReportCPUBudget(t *testing.T) {
	dir := t.TempDir()
	rep := func(name string, rps float64, count int) string {
		p := filepath.Join(dir, name)
		body := fmt.Sprintf(`{"count":%d,"rps":%g,"statusCodeDistribution":{"OK":%d},"latencyDistribution":[{"percentage":50,"latency":1000000},{"percentage":90,"latency":2000000},{"percentage":99,"latency":3000000}]}`, count, rps, count)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tsv := "store\treplicas\tcall\tpackages\tconcurrency\tconnections\tfile\tsplit\tserver_ms\tcpu_ms\tghz_cpu_ms\n" +
		"sqlite\t1\thealth\t0\t50\t4\t" + rep("h.json", 15000, 300000) + "\t-\t0.007\t0.053\t0.050\n" +
		"sqlite\t1\tverify\t50\t50\t4\t" + rep("v.json", 1272, 25440) + "\t-\t0.419\t0.470\t0.600\n" +
		"sqlite\t1\tattest\t50\t50\t4\t" + rep("a.json", 287, 5740) + "\t-\t164\t3.365\t\t\n"
	path := filepath.Join(dir, "results.tsv")
	if err := os.WriteFile(path, []byte(strings.Replace(tsv, "\t\t\n", "\t-\n", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	cells, err := readCells(path)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := writeReport(&out, cells); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{
		"| ghz CPU ms/call |",
		"| 0.470 | 0.600 |",
		"CPU per call: vouchd 0.470 ms + ghz 0.600 ms = 1.070 ms;",
		"10,000 RPC/s needs at most",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
	// The attesting cell has no ghz figure: no budget line for it.
	if strings.Count(got, "CPU per call:") != 1 {
		t.Errorf("want one budget line (verify only):\n%s", got)
	}
}

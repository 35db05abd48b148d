package main

import (
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

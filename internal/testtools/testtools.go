// Package testtools finds the external tools and services that tests need, skipping locally and failing under CI when one is missing.
package testtools

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// InCI reports whether the tests run under CI (CI=true), where a missing
// tool or service is a failure rather than a skip.
func InCI() bool { return os.Getenv("CI") == "true" }

// ToolsBin is the tool cache's bin folder that scripts/tools.sh fills:
// $VOUCH_TOOLS_DIR/bin, by default $HOME/.cache/vouch/tools/bin.
func ToolsBin() string {
	dir := os.Getenv("VOUCH_TOOLS_DIR")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return ""
		}
		dir = filepath.Join(home, ".cache", "vouch", "tools")
	}
	return filepath.Join(dir, "bin")
}

// Find returns the path of the named tool, looking in the tool cache first
// and then on PATH, or "" when it is nowhere.
func Find(name string) string {
	if bin := ToolsBin(); bin != "" {
		p := filepath.Join(bin, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	return ""
}

// Require returns the path of the named tool. When it is missing the test is
// skipped with a message saying how to install it — or, under CI=true, fails.
func Require(t testing.TB, name string) string {
	t.Helper()
	if p := Find(name); p != "" {
		return p
	}
	Missing(t, name+" not found in "+ToolsBin()+" or on PATH (run scripts/tools.sh "+name+")")
	return ""
}

// Missing skips the test with reason, or fails it under CI=true: a silent
// skip must never look like a pass in CI.
func Missing(t testing.TB, reason string) {
	t.Helper()
	if InCI() {
		t.Fatalf("required under CI=true: %s", reason)
	}
	t.Skipf("skipping: %s", reason)
}

// CPUTime is the CPU time this process has used so far (user and system,
// all threads). Beside a benchmark's wall-clock ns/op it tells whether a
// slow run waited for a core on a shared machine; it does not count other
// processes (a database server's own CPU).
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// ReportCPU starts measuring CPU time; the function it returns adds the
// CPU time per iteration since then to b as "cpu-ns/op". Call it right
// before the timed loop and the returned function right after it (or
// defer it).
func ReportCPU(b *testing.B) func() {
	start := CPUTime()
	return func() {
		if b.N > 0 {
			b.ReportMetric(float64(CPUTime()-start)/float64(b.N), "cpu-ns/op")
		}
	}
}

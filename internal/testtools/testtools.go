// Package testtools finds the external tools and services that tests need, skipping locally and failing under CI when one is missing.
package testtools

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
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

package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// writeFiles creates a key file and returns the directory.
func setup(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"signing.key", "repo.rsa.pub"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func good(dir string) string {
	return `listen: 127.0.0.1:7443
store: sqlite://` + dir + `/vouch.db
signing_key: ` + dir + `/signing.key
repositories:
  - name: wolfi
    url: https://packages.wolfi.dev/os
    mirrors: [https://mirror.example/wolfi]
    keys: [` + dir + `/repo.rsa.pub]
    architectures: [x86_64, aarch64]
    refresh: 5m
    max_age: 24h
`
}

func TestParseGood(t *testing.T) {
	dir := setup(t)
	c, err := Parse("vouch.yaml", []byte(good(dir)))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	r := c.Repositories[0]
	got := []any{c.Listen, *c.MetricsListen, c.Limits.MaxPackages, r.MaxAge.Std(), r.History.Std(), r.Distro, c.Log.Format}
	want := []any{"127.0.0.1:7443", DefaultMetricsListen, DefaultMaxPackages, 24 * time.Hour, 30 * 24 * time.Hour, "wolfi", "json"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
}

func TestParseErrors(t *testing.T) {
	dir := setup(t)
	base := good(dir)
	tests := []struct {
		name string
		yaml string
		// want are substrings of one reported error: "file:line: field: message".
		want []string
	}{
		{"unknown field", base + "colour: blue\n", []string{"bad.yaml:12: colour: unknown field colour"}},
		{"missing store", strings.Replace(base, "store: sqlite://"+dir+"/vouch.db\n", "", 1), []string{"bad.yaml: store: required"}},
		{"relative sqlite path", strings.Replace(base, "sqlite://"+dir, "sqlite://var", 1), []string{"bad.yaml:2: store:", "absolute path"}},
		{"unknown store scheme", strings.Replace(base, "sqlite://"+dir+"/vouch.db", "mysql://root@db/vouch", 1), []string{"bad.yaml:2: store:", "unknown scheme"}},
		{"bad duration", strings.Replace(base, "max_age: 24h", "max_age: a day", 1), []string{"bad.yaml:11: repositories[0].max_age: \"a day\" is not a duration"}},
		{"max_age below refresh", strings.Replace(base, "max_age: 24h", "max_age: 1m", 1), []string{"bad.yaml:11: repositories[0].max_age: 1m0s is shorter than refresh"}},
		{"no keys", strings.Replace(base, "keys: ["+dir+"/repo.rsa.pub]", "keys: []", 1), []string{"bad.yaml:8: repositories[0].keys: required"}},
		{"missing key file", strings.Replace(base, "repo.rsa.pub", "nope.rsa.pub", 1), []string{"bad.yaml:8: repositories[0].keys[0]:", "no such file"}},
		{"bad arch", strings.Replace(base, "[x86_64, aarch64]", "[x86_64, noarch]", 1), []string{"bad.yaml:9: repositories[0].architectures[1]: noarch is not an index architecture"}},
		{"bad mirror scheme", strings.Replace(base, "https://mirror.example/wolfi", "ftp://mirror.example/wolfi", 1), []string{"bad.yaml:7: repositories[0].mirrors[0]:", "want an https, http or file URL"}},
		{"public address without tls or auth", strings.Replace(base, "127.0.0.1:7443", "0.0.0.0:7443", 1), []string{"bad.yaml:1: listen:", "not a loopback address: configure tls"}},
		{"duplicate repository", base + strings.SplitN(base, "repositories:\n", 2)[1], []string{"repositories[1].name: \"wolfi\" is already the name of repositories[0]"}},
		{"bad role", base + "tls: {cert: " + dir + "/signing.key, key: " + dir + "/signing.key, client_ca: " + dir + "/signing.key}\nauth:\n  client_certificates:\n    - {identity: ci, roles: [root]}\n", []string{"auth.client_certificates[0].roles: unknown role \"root\""}},
		{"negative max_in_flight", base + "limits: {max_in_flight: -3}\n", []string{"bad.yaml:12: limits.max_in_flight: -3: want 1..100000"}},
		{"queue_timeout too long", base + "limits: {queue_timeout: 1h}\n", []string{"bad.yaml:12: limits.queue_timeout: 1h0m0s: want a duration from 1ms to 10m"}},
		{"supplier without name", strings.Replace(base, "max_age: 24h", "max_age: 24h\n    supplier: \"Organization:\"", 1), []string{"bad.yaml:12: repositories[0].supplier:", "names a type but no supplier"}},
		{"not yaml", "listen: [\n", []string{"bad.yaml:", "not valid YAML"}},
		{"empty", "", []string{"bad.yaml: file is empty"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("bad.yaml", []byte(tt.yaml))
			if err == nil {
				t.Fatal("Parse succeeded, want an error")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("errors.Is(err, ErrInvalid) = false for %v", err)
			}
			found := false
			for _, line := range strings.Split(err.Error(), "\n") {
				ok := true
				for _, w := range tt.want {
					ok = ok && strings.Contains(line, w)
				}
				found = found || ok
			}
			if !found {
				t.Errorf("no error line contains all of %q; got:\n%v", tt.want, err)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "absent.yaml"))
	if err == nil || !strings.Contains(err.Error(), "absent.yaml: cannot read: no such file") {
		t.Errorf("Load(absent) = %v", err)
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{"30d", 30 * 24 * time.Hour, false},
		{"90s", 90 * time.Second, false},
		{"xd", 0, true},
		{"", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v, err %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestErrorsInFileOrder(t *testing.T) {
	dir := setup(t)
	// The store (line 2) is checked before the listen address (line 1), and
	// signing_key is missing (no line).
	yaml := strings.Replace(strings.Replace(good(dir), "127.0.0.1:7443", "0.0.0.0:7443", 1), "sqlite://"+dir, "sqlite://var", 1)
	yaml = strings.Replace(yaml, "signing_key: "+dir+"/signing.key\n", "", 1)
	_, err := Parse("bad.yaml", []byte(yaml))
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("err = %v, want Errors", err)
	}
	var got []string
	for _, e := range es {
		got = append(got, fmt.Sprintf("%d %s", e.Line, e.Field))
	}
	want := []string{"1 listen", "1 listen", "2 store", "0 signing_key"} // listen: no TLS, and no auth
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
}

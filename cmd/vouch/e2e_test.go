package main

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/vouchdev/vouch/attest"
	"github.com/vouchdev/vouch/client/ociattest"
	"github.com/vouchdev/vouch/internal/testtools"
	"github.com/vouchdev/vouch/server/servertest"
)

// runVouch runs the CLI in-process.
func runVouch(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// startRegistry runs go-containerregistry's in-memory registry on loopback,
// with or without the OCI 1.1 referrers API, and returns its host:port.
func startRegistry(t *testing.T, referrers bool) string {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.WithReferrersSupport(referrers), registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// dbRecord is one installed-database record.
type dbRecord struct{ name, version, arch, checksum string }

// installedDB writes records in apko's layout (index fields, then files).
func installedDB(recs []dbRecord) []byte {
	var b strings.Builder
	for _, r := range recs {
		fmt.Fprintf(&b, "P:%s\nV:%s\nA:%s\nL:MIT\nT:%s\nU:\nD:\ni:[]\nC:%s\nF:usr/share/%s\nR:README\nZ:Q1w7j6yciTNmNb6T05yAX+BPhSuAA=\n\n", r.name, r.version, r.arch, r.name, r.checksum, r.name)
	}
	return []byte(b.String())
}

// layer builds an uncompressed-tar layer of files (path -> content);
// a nil content is a whiteout of that path.
func layer(t *testing.T, files map[string][]byte) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		data := files[n]
		if data == nil {
			n = filepath.Join(filepath.Dir(n), ".wh."+filepath.Base(n))
			data = []byte{}
		}
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	raw := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// image builds a linux/amd64 OCI image from layers (bottom first).
func image(t *testing.T, base v1.Image, layers ...v1.Layer) v1.Image {
	t.Helper()
	if base == nil {
		base = mutate.MediaType(empty.Image, "application/vnd.oci.image.manifest.v1+json")
		base = mutate.ConfigMediaType(base, "application/vnd.oci.image.config.v1+json")
		cf, err := base.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		cf = cf.DeepCopy()
		cf.OS, cf.Architecture = "linux", "amd64"
		if base, err = mutate.ConfigFile(base, cf); err != nil {
			t.Fatal(err)
		}
	}
	img, err := mutate.AppendLayers(base, layers...)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// push writes img to ref and returns ref's repository at the image digest.
func push(t *testing.T, ref string, img v1.Image) name.Digest {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
	h, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return r.Context().Digest(h.String())
}

// runCosign runs the real cosign binary, offline.
func runCosign(t *testing.T, cosign string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, cosign, args...)
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HOME="+home, "TUF_ROOT="+filepath.Join(home, "tuf"), "SIGSTORE_NO_CACHE=true")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// attestationsFrom reads the files vouch verify --out wrote for hex.
func attestationsFrom(t *testing.T, dir, hex string) []ociattest.Attestation {
	t.Helper()
	var out []ociattest.Attestation
	for _, p := range []struct{ short, typ string }{{"spdx", "https://spdx.dev/Document"}, {"vsa", "https://slsa.dev/verification_summary/v1"}} {
		b, err := os.ReadFile(filepath.Join(dir, hex+"."+p.short+".sigstore.json"))
		if err != nil {
			t.Fatal(err)
		}
		e, err := os.ReadFile(filepath.Join(dir, hex+"."+p.short+".dsse.json"))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ociattest.Attestation{PredicateType: p.typ, Bundle: b, Envelope: e})
	}
	return out
}

// testImage is the image under test: its installed database lists the
// server's repository packages (noarch ones as "noarch", as apk writes
// them), under apko's path, in a lower layer.
func testImage(t *testing.T, env *servertest.Env, change func(*dbRecord)) (v1.Image, []dbRecord) {
	t.Helper()
	var recs []dbRecord
	for _, c := range env.Claims() {
		b := env.Packages[c.Name]
		recs = append(recs, dbRecord{name: c.Name, version: c.Version, arch: b.Entry.Arch, checksum: c.Checksum})
	}
	base := layer(t, map[string][]byte{
		"usr/lib/apk/db/installed": installedDB(recs),
		"etc/apk/repositories":     []byte(env.RepoURL + "\n"),
		"etc/apk/arch":             []byte("x86_64\n"),
	})
	app := layer(t, map[string][]byte{"app/hello.txt": []byte("hello\n")})
	img := image(t, nil, base, app)
	if change == nil {
		return img, recs
	}
	changed := append([]dbRecord(nil), recs...)
	for i := range changed {
		change(&changed[i])
	}
	// The rebuild adds a layer that replaces the database.
	return image(t, img, layer(t, map[string][]byte{"usr/lib/apk/db/installed": installedDB(changed)})), changed
}

func TestVerifyAttachCheckE2E(t *testing.T) {
	cosign := testtools.Require(t, "cosign")
	env := servertest.Start(t, servertest.Options{})
	policy, err := filepath.Abs("../../deploy/policy/vouch-spdx.cue")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		referrers bool
	}{{"referrers API", true}, {"referrers tag schema", false}} {
		t.Run(tc.name, func(t *testing.T) {
			host := startRegistry(t, tc.referrers)
			img, _ := testImage(t, env, nil)
			d := push(t, host+"/app:v1", img)
			hex := d.DigestStr()[len("sha256:"):]
			out := t.TempDir()

			code, stdout, stderr := runVouch(t, "verify", "--server", env.Addr, "--image", host+"/app:v1", "--attach", "--out", out)
			if code != 0 {
				t.Fatalf("vouch verify: exit %d\n%s\n%s", code, stdout, stderr)
			}
			for _, f := range []string{".spdx.sigstore.json", ".vsa.sigstore.json", ".spdx.dsse.json", ".vsa.dsse.json"} {
				if _, err := os.Stat(filepath.Join(out, hex+f)); err != nil {
					t.Errorf("vouch verify --out: %v", err)
				}
			}
			if !strings.Contains(stdout, "VERIFIED") || !strings.Contains(stdout, "wolfi-baselayout") {
				t.Errorf("vouch verify output lacks the per-package table:\n%s", stdout)
			}

			// Real cosign, offline, with vouch's key: plain and with the
			// shipped CUE policy.
			for _, extra := range [][]string{nil, {"--policy", policy}} {
				args := append([]string{"verify-attestation", "--key", env.PublicKeyPath, "--type", "spdxjson", "--insecure-ignore-tlog"}, extra...)
				out, err := runCosign(t, cosign, append(args, d.String())...)
				if err != nil {
					t.Errorf("cosign %s: %v\n%s", strings.Join(args, " "), err, out)
				}
				t.Logf("cosign %s %s:\n%s", strings.Join(args, " "), d, out)
			}
			// A policy the document does not meet fails: the policy is applied.
			strict := filepath.Join(t.TempDir(), "strict.cue")
			if err := os.WriteFile(strict, []byte("predicate: spdxVersion: \"SPDX-2.2\"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := runCosign(t, cosign, "verify-attestation", "--key", env.PublicKeyPath, "--type", "spdxjson", "--insecure-ignore-tlog", "--policy", strict, d.String()); err == nil {
				t.Errorf("cosign with a policy the attestation fails passed:\n%s", out)
			}
			// And cosign refuses another key: the passes above are real.
			otherKey := t.TempDir()
			if _, err := attest.WriteKeyFiles(otherKey, attest.KeyECDSAP256); err != nil {
				t.Fatal(err)
			}
			if out, err := runCosign(t, cosign, "verify-attestation", "--key", filepath.Join(otherKey, attest.PublicKeyFile), "--type", "spdxjson", "--insecure-ignore-tlog", d.String()); err == nil {
				t.Errorf("cosign verify-attestation with another key passed:\n%s", out)
			}
			code, stdout, stderr = runVouch(t, "check", "--key", env.PublicKeyPath, "--image", host+"/app:v1", "--json")
			if code != 0 {
				t.Fatalf("vouch check --image: exit %d\n%s\n%s", code, stdout, stderr)
			}
			var rep checkJSON
			if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
				t.Fatal(err)
			}
			if !rep.OK || rep.Result.Layouts["referrer"] != 1 || rep.Result.Layouts["att"] != 1 || rep.Result.Checked != len(env.Packages) {
				t.Errorf("vouch check --json = %s", stdout)
			}

			// The legacy layout alone, as policy-controller key authorities
			// and Kyverno "Cosign" read it.
			legacy := push(t, host+"/legacy:v1", img)
			if err := ociattest.AttachLegacy(context.Background(), legacy, attestationsFrom(t, out, hex)); err != nil {
				t.Fatal(err)
			}
			if out, err := runCosign(t, cosign, "verify-attestation", "--key", env.PublicKeyPath, "--type", "spdxjson", "--insecure-ignore-tlog", "--policy", policy, legacy.String()); err != nil {
				t.Errorf("cosign verify-attestation (.att layout only): %v\n%s", err, out)
			}
			if code, stdout, stderr := runVouch(t, "check", "--key", env.PublicKeyPath, "--image", legacy.String()); code != 0 || !strings.Contains(stdout, "att x1") {
				t.Errorf("vouch check (.att layout only): exit %d\n%s\n%s", code, stdout, stderr)
			}

			// The image rebuilt with one package changed: its attestation
			// was made from the old package files, so check names hello.
			img2, _ := testImage(t, env, func(r *dbRecord) {
				if r.name == "hello" {
					r.checksum = "Q1" + strings.Repeat("A", 26) + "A="
				}
			})
			d2 := push(t, host+"/app:v2", img2)
			if code, stdout, _ := runVouch(t, "check", "--key", env.PublicKeyPath, "--image", host+"/app:v2"); code != checkExitNone {
				t.Errorf("vouch check on an unattested rebuild: exit %d; want %d\n%s", code, checkExitNone, stdout)
			}
			apks, _ := filepath.Glob(filepath.Join(env.RepoDir, env.Arch, "*.apk"))
			out2 := t.TempDir()
			code, stdout, stderr = runVouch(t, append([]string{"verify", "--server", env.Addr, "--repository", env.RepoURL, "--arch", env.Arch, "--subject", d2.DigestStr(), "--out", out2}, apks...)...)
			if code != 0 {
				t.Fatalf("vouch verify --apk: exit %d\n%s\n%s", code, stdout, stderr)
			}
			if err := ociattest.Attach(context.Background(), d2, attestationsFrom(t, out2, d2.DigestStr()[len("sha256:"):])); err != nil {
				t.Fatal(err)
			}
			code, stdout, stderr = runVouch(t, "check", "--key", env.PublicKeyPath, "--image", host+"/app:v2")
			if code != checkExitPackages || !strings.Contains(stdout, "DIFFERS hello") {
				t.Errorf("vouch check on the altered image: exit %d; want %d naming hello\n%s\n%s", code, checkExitPackages, stdout, stderr)
			}
		})
	}
}

func TestVerifyRefusedWritesNothing(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	host := startRegistry(t, true)
	img, _ := testImage(t, env, func(r *dbRecord) {
		if r.name == "glibc" {
			r.checksum = env.Packages["busybox"].Checksum.String()
		}
	})
	d := push(t, host+"/bad:v1", img)
	out := filepath.Join(t.TempDir(), "out")
	code, stdout, stderr := runVouch(t, "verify", "--server", env.Addr, "--image", host+"/bad:v1", "--attach", "--out", out)
	if code != verifyExitRefused {
		t.Fatalf("exit %d; want %d\n%s\n%s", code, verifyExitRefused, stdout, stderr)
	}
	if !strings.Contains(stdout, "CHECKSUM_MISMATCH") || !strings.Contains(stdout, "glibc") || !strings.Contains(stdout, "index lists") {
		t.Errorf("output lacks the verdict and its evidence:\n%s", stdout)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("--out folder exists after a refusal: %v", err)
	}
	if _, err := ociattest.Find(context.Background(), d); !errors.Is(err, ociattest.ErrNotFound) {
		t.Errorf("Find after a refusal: %v; want ErrNotFound", err)
	}
}

func TestCheckBundle(t *testing.T) {
	env := servertest.Start(t, servertest.Options{})
	apks, _ := filepath.Glob(filepath.Join(env.RepoDir, env.Arch, "*.apk"))
	out := t.TempDir()
	subject := "sha256:" + strings.Repeat("ab", 32)
	code, stdout, stderr := runVouch(t, append([]string{"verify", "--server", env.Addr, "--repository", env.RepoURL, "--arch", env.Arch, "--subject", subject, "--out", out}, apks...)...)
	if code != 0 {
		t.Fatalf("vouch verify --apk: exit %d\n%s\n%s", code, stdout, stderr)
	}
	bundle := filepath.Join(out, strings.Repeat("ab", 32)+".spdx.sigstore.json")
	envelope := filepath.Join(out, strings.Repeat("ab", 32)+".spdx.dsse.json")

	// A root filesystem whose database matches, and one with hello changed.
	var good, bad []dbRecord
	for _, c := range env.Claims() {
		r := dbRecord{name: c.Name, version: c.Version, arch: env.Packages[c.Name].Entry.Arch, checksum: c.Checksum}
		good = append(good, r)
		if r.name == "hello" {
			r.checksum = env.Packages["glibc"].Checksum.String()
		}
		bad = append(bad, r)
	}
	rootfs := func(recs []dbRecord) string {
		dir := t.TempDir()
		p := filepath.Join(dir, "lib", "apk", "db")
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(p, "installed"), installedDB(recs), 0o644); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	otherKey := t.TempDir()
	if _, err := attest.WriteKeyFiles(otherKey, attest.KeyECDSAP256); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string
	}{
		{name: "bundle", args: []string{"--bundle", bundle, "--digest", subject}, wantCode: checkExitOK, wantOut: "PASS"},
		{name: "envelope", args: []string{"--bundle", envelope, "--digest", subject}, wantCode: checkExitOK, wantOut: "PASS"},
		{name: "matching rootfs", args: []string{"--bundle", bundle, "--digest", subject, "--rootfs", rootfs(good)}, wantCode: checkExitOK, wantOut: "5 installed checked, 0 differ"},
		{name: "altered rootfs", args: []string{"--bundle", bundle, "--digest", subject, "--rootfs", rootfs(bad)}, wantCode: checkExitPackages, wantOut: "DIFFERS hello 2.12.1-r1"},
		{name: "other subject", args: []string{"--bundle", bundle, "--digest", "sha256:" + strings.Repeat("cd", 32)}, wantCode: checkExitNone, wantOut: "FAIL"},
		{name: "too old", args: []string{"--bundle", bundle, "--digest", subject, "--max-age", "1ns"}, wantCode: checkExitTooOld, wantOut: "FAIL"},
		{name: "missing --digest", args: []string{"--bundle", bundle}, wantCode: checkExitError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runVouch(t, append([]string{"check", "--key", env.PublicKeyPath}, tt.args...)...)
			if code != tt.wantCode || !strings.Contains(stdout, tt.wantOut) {
				t.Errorf("exit %d; want %d with %q\nstdout:\n%s\nstderr:\n%s", code, tt.wantCode, tt.wantOut, stdout, stderr)
			}
		})
	}
	pub := filepath.Join(otherKey, attest.PublicKeyFile)
	if code, stdout, _ := runVouch(t, "check", "--key", pub, "--bundle", bundle, "--digest", subject); code != checkExitNone {
		t.Errorf("wrong key: exit %d; want %d\n%s", code, checkExitNone, stdout)
	}
}

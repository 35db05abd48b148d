package main

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/testing/protocmp"

	vouchv1 "github.com/vouchdev/vouch/proto/vouch/v1"
)

// fakeBuilder is a hand-written BuilderService: it records each request and
// answers with verify (default: every package VERIFIED, no attestations).
type fakeBuilder struct {
	vouchv1.UnimplementedBuilderServiceServer
	mu       sync.Mutex
	requests []*vouchv1.VerifyPackagesRequest
	verify   func(*vouchv1.VerifyPackagesRequest) *vouchv1.VerifyPackagesResponse
}

func (f *fakeBuilder) VerifyPackages(_ context.Context, req *vouchv1.VerifyPackagesRequest) (*vouchv1.VerifyPackagesResponse, error) {
	f.mu.Lock()
	f.requests = append(f.requests, req)
	f.mu.Unlock()
	if f.verify != nil {
		return f.verify(req), nil
	}
	resp := &vouchv1.VerifyPackagesResponse{Verdict: vouchv1.Verdict_VERDICT_VERIFIED}
	for i, c := range req.GetPackages() {
		resp.Results = append(resp.Results, &vouchv1.PackageResult{Index: uint32(i), Name: c.GetName(), Version: c.GetVersion(), Arch: c.GetArch(), Checksum: c.GetChecksum(), Verdict: vouchv1.Verdict_VERDICT_VERIFIED})
	}
	return resp, nil
}

// startFake serves f on loopback and returns the address.
func startFake(t *testing.T, f *fakeBuilder) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	vouchv1.RegisterBuilderServiceServer(s, f)
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	return lis.Addr().String()
}

// lockClaims reads a lock file independently of the client package: the
// claims it describes, field by field.
func lockClaims(t *testing.T, path string) []*vouchv1.PackageClaim {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var lf struct {
		Contents struct {
			Packages []map[string]any `json:"packages"`
		} `json:"contents"`
	}
	if err := json.Unmarshal(b, &lf); err != nil {
		t.Fatal(err)
	}
	var out []*vouchv1.PackageClaim
	for _, p := range lf.Contents.Packages {
		data := p["data"].(map[string]any)["checksum"].(string)
		raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(data, "sha256-"))
		if err != nil {
			t.Fatal(err)
		}
		url, arch := p["url"].(string), p["architecture"].(string)
		repo := url[:strings.LastIndex(url, "/"+arch+"/")]
		out = append(out, &vouchv1.PackageClaim{
			Name: p["name"].(string), Version: p["version"].(string), Arch: arch,
			Repository: repo, Checksum: p["checksum"].(string), Datahash: hex.EncodeToString(raw),
		})
	}
	return out
}

func TestVerifyLock(t *testing.T) {
	const testrepoLock = "../../testdata/real/apko-testrepo/apko.lock.json"
	const wolfiLock = "../../testdata/real/lock/wolfi-real.apko.lock.json"
	tests := []struct {
		name string
		args []string
		lock string
		// first is the first claim written out by hand from the lock file.
		first *vouchv1.PackageClaim
		count int
	}{
		{
			name: "apko test repository, checked against its files",
			args: []string{"--lock", testrepoLock, "--apk-dir", "../../testdata/real/apko-testrepo"},
			lock: testrepoLock,
			first: &vouchv1.PackageClaim{
				Name: "pretend-baselayout", Version: "1.0.0-r0", Arch: "x86_64", Repository: "./testdata/packages",
				Checksum: "Q1m6wB0UFePGN8Drz82pC8y2uAiu8=",
				Datahash: "72405aa6c68cbb910e6ff7b8122d6cda5ffe7593046a61e15266a827cc9e6708",
			},
			count: 4,
		},
		{
			name: "real Wolfi lock",
			args: []string{"--lock", wolfiLock},
			lock: wolfiLock,
			first: &vouchv1.PackageClaim{
				Name: "wolfi-baselayout", Version: "20230201-r29", Arch: "x86_64", Repository: "https://packages.wolfi.dev/os",
				Checksum: "Q1mxVgkD4+r1cSUSeWo6ClkgNR1IA=",
				Datahash: "e6338155e5d358911b2fe0a7c63e4dbb892510be12101ec80cccd3f7aadb9240",
			},
			count: 14,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := &fakeBuilder{}
			addr := startFake(t, fake)
			code, stdout, stderr := runVouch(t, append([]string{"verify", "--server", addr, "--subject", "sha256:" + strings.Repeat("0", 64)}, tt.args...)...)
			// The fake issues no attestations, so asking for them is refused
			// as an incomplete response; the claims are what is checked.
			if code != verifyExitRefused || len(fake.requests) != 1 {
				t.Fatalf("exit %d, %d requests\n%s\n%s", code, len(fake.requests), stdout, stderr)
			}
			got := fake.requests[0].GetPackages()
			if len(got) != tt.count {
				t.Fatalf("%d claims; want %d", len(got), tt.count)
			}
			if diff := cmp.Diff(tt.first, got[0], protocmp.Transform()); diff != "" {
				t.Errorf("first claim (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(lockClaims(t, tt.lock), got, protocmp.Transform()); diff != "" {
				t.Errorf("claims (-want +got):\n%s", diff)
			}
		})
	}
}

func TestVerifyLockDisagrees(t *testing.T) {
	src := "../../testdata/real/apko-testrepo"
	lock, err := os.ReadFile(filepath.Join(src, "apko.lock.json"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	copyDir := func(arch string) {
		if err := os.MkdirAll(filepath.Join(dir, arch), 0o755); err != nil {
			t.Fatal(err)
		}
		files, _ := filepath.Glob(filepath.Join(src, arch, "*.apk"))
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, arch, filepath.Base(f)), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	copyDir("x86_64")
	copyDir("aarch64")
	// replayout's x86_64 file replaced by the aarch64 build.
	swapped := dir + "-swapped"
	t.Cleanup(func() { os.RemoveAll(swapped) })
	for _, arch := range []string{"x86_64", "aarch64"} {
		if err := os.MkdirAll(filepath.Join(swapped, arch), 0o755); err != nil {
			t.Fatal(err)
		}
		files, _ := filepath.Glob(filepath.Join(src, arch, "*.apk"))
		for _, f := range files {
			from := f
			if arch == "x86_64" && filepath.Base(f) == "replayout-1.0.0-r0.apk" {
				from = filepath.Join(src, "aarch64", filepath.Base(f))
			}
			b, err := os.ReadFile(from)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(swapped, arch, filepath.Base(f)), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}

	edited := filepath.Join(t.TempDir(), "edited.lock.json")
	// The lock claims another checksum for pretend-baselayout.
	if err := os.WriteFile(edited, []byte(strings.Replace(string(lock), "Q1m6wB0UFePGN8Drz82pC8y2uAiu8=", "Q1LLq2qDNrS/qRnhxQ3hsY/sHbQnc=", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	old := filepath.Join(t.TempDir(), "old.lock.json")
	if err := os.WriteFile(old, []byte(strings.ReplaceAll(string(lock), `"checksum": "Q1`, `"checksum_": "Q1`)), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		args       []string
		wantStderr string
	}{
		{name: "lock checksum edited", args: []string{"--lock", edited, "--apk-dir", dir}, wantStderr: "pretend-baselayout-1.0.0-r0: lock checksum Q1LLq2qDNrS/qRnhxQ3hsY/sHbQnc="},
		{name: "another file in the folder", args: []string{"--lock", filepath.Join(src, "apko.lock.json"), "--apk-dir", swapped}, wantStderr: "replayout-1.0.0-r0: lock checksum"},
		{name: "file missing", args: []string{"--lock", filepath.Join(src, "apko.lock.json"), "--apk-dir", t.TempDir()}, wantStderr: "no .apk file"},
		{name: "lock without checksums", args: []string{"--lock", old}, wantStderr: "please regenerate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := &fakeBuilder{}
			addr := startFake(t, fake)
			code, stdout, stderr := runVouch(t, append([]string{"verify", "--server", addr}, tt.args...)...)
			if code != verifyExitInput || !strings.Contains(stderr, tt.wantStderr) {
				t.Errorf("exit %d; want %d with %q\nstdout:\n%s\nstderr:\n%s", code, verifyExitInput, tt.wantStderr, stdout, stderr)
			}
			if len(fake.requests) != 0 {
				t.Errorf("%d requests sent for a refused lock", len(fake.requests))
			}
		})
	}
}

func TestVerifyPrintClaims(t *testing.T) {
	const wolfiLock = "../../testdata/real/lock/wolfi-real.apko.lock.json"
	code, stdout, stderr := runVouch(t, "verify", "--print-claims", "--lock", wolfiLock)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	var got []struct {
		Subject string            `json:"subject"`
		Claims  []json.RawMessage `json:"claims"`
	}
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, stdout)
	}
	if len(got) != 1 || got[0].Subject != "" {
		t.Fatalf("targets = %+v; want one without a subject", got)
	}
	want := lockClaims(t, wolfiLock)
	if len(got[0].Claims) != len(want) {
		t.Fatalf("%d claims; want %d", len(got[0].Claims), len(want))
	}
	for i, raw := range got[0].Claims {
		c := &vouchv1.PackageClaim{}
		if err := protojson.Unmarshal(raw, c); err != nil {
			t.Fatalf("claim %d: %v", i, err)
		}
		if diff := cmp.Diff(want[i], c, protocmp.Transform()); diff != "" {
			t.Errorf("claim %d (-want +got):\n%s", i, diff)
		}
	}

	// Without --print-claims, --server is required.
	if code, _, stderr := runVouch(t, "verify", "--lock", wolfiLock); code == 0 || !strings.Contains(stderr, "--server is required") {
		t.Errorf("without --server: exit %d, %q", code, stderr)
	}
}

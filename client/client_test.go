package client

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	vouchv1 "github.com/vouchdev/vouch/proto/vouch/v1"
)

const real = "../testdata/real"

func TestClaimsFromAPKs(t *testing.T) {
	tests := []struct {
		name    string
		files   []string
		arch    string
		want    []*vouchv1.PackageClaim
		wantErr error
	}{
		{
			name:  "signed Wolfi package, own arch",
			files: []string{"wolfi/ruby3.2-base64-0.2.0-r2.x86_64.apk"},
			want: []*vouchv1.PackageClaim{{
				Name: "ruby3.2-base64", Version: "0.2.0-r2", Arch: "x86_64", Repository: "https://r.example/os",
				Checksum: "Q1kQfQXs+MLbCqi4Tb9KF229uRI10=",
			}},
		},
		{
			name:  "noarch package claimed for the index arch",
			files: []string{"pmos/x86_64/hello-world-wrapper-1-r2.apk"},
			arch:  "aarch64",
			want: []*vouchv1.PackageClaim{{
				Name: "hello-world-wrapper", Version: "1-r2", Arch: "aarch64", Repository: "https://r.example/os",
				Checksum: "Q1DT+nSeQ1jl4iw3zeg5qZrbwlhXA=",
			}},
		},
		{name: "noarch without --arch", files: []string{"pmos/x86_64/hello-world-wrapper-1-r2.apk"}, wantErr: ErrArch},
		{name: "--arch contradicts the package", files: []string{"wolfi/ruby3.2-base64-0.2.0-r2.x86_64.apk"}, arch: "aarch64", wantErr: ErrArch},
		{name: "data altered after signing", files: []string{"wolfi/tampered/neon-4604-r0.aarch64.apk"}, wantErr: ErrInput},
		{name: "not a file", files: []string{"wolfi/missing.apk"}, wantErr: ErrInput},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var paths []string
			for _, f := range tt.files {
				paths = append(paths, filepath.Join(real, f))
			}
			got, err := ClaimsFromAPKs(context.Background(), paths, APKOptions{Repository: "https://r.example/os", Arch: tt.arch})
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v; want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range got {
				if len(c.Datahash) != 64 {
					t.Errorf("%s: datahash %q", c.Name, c.Datahash)
				}
				c.Datahash = ""
			}
			if diff := cmp.Diff(tt.want, got, protocmp.Transform()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestClaimsFromAPKsControl(t *testing.T) {
	p := filepath.Join(real, "wolfi/hello-wolfi-2.12-r1.aarch64.apk")
	got, err := ClaimsFromAPKs(context.Background(), []string{p, p}, APKOptions{Repository: "https://r.example/os", Control: true, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || len(got[0].Control) == 0 {
		t.Fatalf("control member not sent: %v", got)
	}
	d, err := DigestAPK(p, 0)
	if err != nil {
		t.Fatal(err)
	}
	if d.Checksum.String() != "Q1tfjaxtgIGRBjOYGl6Pq3/hm8V2o=" || got[1].Checksum != d.Checksum.String() {
		t.Errorf("checksum %s, claim %s", d.Checksum, got[1].Checksum)
	}
}

func TestRepositoryFromURL(t *testing.T) {
	tests := []struct{ url, arch, want string }{
		{"https://packages.wolfi.dev/os/x86_64/a-1-r0.apk", "x86_64", "https://packages.wolfi.dev/os"},
		{"./testdata/packages/aarch64/a-1-r0.apk", "aarch64", "./testdata/packages"},
		{"https://r.example/flat/a-1-r0.apk", "x86_64", "https://r.example/flat"},
		{"a-1-r0.apk", "x86_64", ""},
	}
	for _, tt := range tests {
		if got := repositoryFromURL(tt.url, tt.arch); got != tt.want {
			t.Errorf("repositoryFromURL(%q, %q) = %q; want %q", tt.url, tt.arch, got, tt.want)
		}
	}
}

func TestDialRefuses(t *testing.T) {
	tok := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tok, []byte("  \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		o    DialOptions
	}{
		{name: "no address", o: DialOptions{}},
		{name: "plaintext off loopback", o: DialOptions{Address: "vouch.example:7443", Plaintext: true}},
		{name: "half a key pair", o: DialOptions{Address: "vouch.example:7443", CertFile: "c.pem"}},
		{name: "empty token", o: DialOptions{Address: "127.0.0.1:7443", TokenFile: tok}},
		{name: "missing CA", o: DialOptions{Address: "vouch.example:7443", CAFile: filepath.Join(t.TempDir(), "none.pem")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Dial(context.Background(), tt.o); !errors.Is(err, ErrDial) {
				t.Errorf("err = %v; want ErrDial", err)
			}
		})
	}
	for _, addr := range []string{"127.0.0.1:1", "[::1]:1", "localhost:1"} {
		conn, err := Dial(context.Background(), DialOptions{Address: addr})
		if err != nil {
			t.Errorf("Dial(%s): %v", addr, err)
			continue
		}
		conn.Close()
	}
}

func TestWriteBundlesNames(t *testing.T) {
	hex := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	dir := t.TempDir()
	got, err := WriteBundles(dir, []*vouchv1.Attestation{
		{SubjectDigest: "sha256:" + hex, PredicateType: "https://spdx.dev/Document", Bundle: []byte("b1"), DsseEnvelope: []byte("e1")},
		{SubjectDigest: "sha256:" + hex, PredicateType: "https://slsa.dev/verification_summary/v1", Bundle: []byte("b2"), DsseEnvelope: []byte("e2")},
	})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range got {
		names = append(names, filepath.Base(p))
	}
	want := []string{hex + ".spdx.sigstore.json", hex + ".spdx.dsse.json", hex + ".vsa.sigstore.json", hex + ".vsa.dsse.json"}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if _, err := WriteBundles(dir, []*vouchv1.Attestation{{SubjectDigest: "sha256:" + hex, PredicateType: "https://example/other"}}); !errors.Is(err, ErrResponse) {
		t.Errorf("unknown predicate type: err = %v; want ErrResponse", err)
	}
}

package apk

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"
)

func TestReadPackageRealFixtures(t *testing.T) {
	m := loadManifest(t)
	keys := fixtureKeys(t)
	n := 0
	for name, f := range m.Files {
		if !strings.HasSuffix(name, ".apk") {
			continue
		}
		n++
		v := f.Verified
		t.Run(name, func(t *testing.T) {
			data := readFixture(t, name)
			for _, mode := range []string{"whole", "one byte at a time"} {
				var r = bytes.NewReader(data)
				var rr interface{ Read([]byte) (int, error) } = r
				if mode != "whole" {
					rr = iotest.OneByteReader(r)
				}
				p, err := ReadPackage(rr, PackageOptions{Keys: keys})
				wantOK := *v.DatahashMatches
				for _, s := range v.PackageSigs {
					wantOK = wantOK && s.Result == "VERIFIED"
				}
				if wantOK != (err == nil) {
					t.Fatalf("%s: ReadPackage error = %v, want ok=%v", mode, err, wantOK)
				}
				if p == nil {
					t.Fatalf("%s: nil package (err %v)", mode, err)
				}
				if !*v.DatahashMatches && !errors.Is(err, ErrDataHashMismatch) {
					t.Errorf("error %v does not match ErrDataHashMismatch", err)
				}
				if got := p.Checksum.String(); got != v.Q1 {
					t.Errorf("Q1 = %s, want %s", got, v.Q1)
				}
				if got := hex.EncodeToString(p.DataSHA256[:]); got != v.DataSHA256Hex {
					t.Errorf("data sha256 = %s, want %s", got, v.DataSHA256Hex)
				}
				if p.Info.DataHash != v.PkginfoDatahash {
					t.Errorf("datahash = %s, want %s", p.Info.DataHash, v.PkginfoDatahash)
				}
				if p.DataHashOK() != *v.DatahashMatches {
					t.Errorf("DataHashOK = %v", p.DataHashOK())
				}
				if got := hex.EncodeToString(p.SHA256[:]); got != f.SHA256 || p.Size != f.Size {
					t.Errorf("file = %s/%d, want %s/%d", got, p.Size, f.SHA256, f.Size)
				}
				if p.Control.Range() != v.ControlRange || p.Data.Range() != v.DataRange {
					t.Errorf("ranges = %s %s, want %s %s", p.Control.Range(), p.Data.Range(), v.ControlRange, v.DataRange)
				}
				if (p.SignatureMember.Size > 0) != *v.Signed {
					t.Errorf("signed = %v, want %v", p.SignatureMember.Size > 0, *v.Signed)
				}
				if v.PkgName != "" && (p.Info.Name != v.PkgName || p.Info.Version != v.PkgVer || p.Info.Arch != v.Arch) {
					t.Errorf("PKGINFO = %s %s %s", p.Info.Name, p.Info.Version, p.Info.Arch)
				}
				var wantSigs, gotSigs []string
				for _, s := range v.PackageSigs {
					wantSigs = append(wantSigs, fmt.Sprintf("%s %s %v", s.Alg, s.KeyName, s.Result == "VERIFIED"))
				}
				for _, s := range p.Signatures {
					gotSigs = append(gotSigs, fmt.Sprintf("%s %s %v", s.Algorithm, s.KeyName, s.Verified))
				}
				if !*v.DatahashMatches {
					// The tampered package fails datahash first; its signature check still runs.
					if !errors.Is(err, ErrBadSignature) {
						t.Errorf("error %v does not match ErrBadSignature", err)
					}
					wantSigs = nil
					gotSigs = nil
				}
				if diff := cmp.Diff(wantSigs, gotSigs); diff != "" {
					t.Errorf("signatures (-want +got):\n%s", diff)
				}
			}
		})
	}
	if n != 19 {
		t.Errorf("found %d package fixtures, want 19", n)
	}
}

// TestPackagesListedInIndexes checks MANIFEST's listed_in_indexes: C: equals
// Q1 and S: equals the file size.
func TestPackagesListedInIndexes(t *testing.T) {
	m := loadManifest(t)
	keys := fixtureKeys(t)
	indexes := map[string]*Index{}
	checked := 0
	for name, f := range m.Files {
		for _, l := range f.Verified.ListedIn {
			x := indexes[l.Index]
			if x == nil {
				var err error
				if x, err = LoadIndex(readFixture(t, l.Index), keys, IndexOptions{}); err != nil {
					t.Fatal(err)
				}
				indexes[l.Index] = x
			}
			p, err := ReadPackage(bytes.NewReader(readFixture(t, name)), PackageOptions{})
			if err != nil {
				t.Fatal(err)
			}
			e, ok := x.Lookup(l.P, l.V, l.A)
			if !ok || !e.Checksum.Equal(p.Checksum) || e.Size != l.S || e.Size != p.Size {
				t.Errorf("%s in %s: entry %+v ok=%v, package Q1 %s size %d", name, l.Index, e, ok, p.Checksum, p.Size)
			}
			checked++
		}
	}
	if checked == 0 {
		t.Fatal("no listed_in_indexes in MANIFEST")
	}
}

func TestReadPackageRefusals(t *testing.T) {
	good := readFixture(t, "wolfi/wolfi-base-1-r1.aarch64.apk")
	unsigned := readFixture(t, "wolfi/perl-json-4.11-r0.x86_64.unsigned.apk")
	tests := []struct {
		name    string
		data    []byte
		opts    PackageOptions
		wantErr error
	}{
		{name: "empty", data: nil, wantErr: ErrPackageFormat},
		{name: "not gzip", data: []byte("not a package at all"), wantErr: ErrPackageFormat},
		{name: "signature member only", data: good[:650], wantErr: ErrPackageFormat},
		{name: "no data part", data: good[:941], wantErr: ErrPackageFormat},
		{name: "truncated data", data: good[:len(good)-10], wantErr: ErrDataHashMismatch},
		{name: "bit flip in data", data: flip(good, 1000), wantErr: ErrDataHashMismatch},
		{name: "bit flip in control", data: flip(good, 700), wantErr: ErrPackageFormat},
		{name: "wrong key", data: good, opts: PackageOptions{Keys: fixtureKeys(t, "melange.rsa.pub")}, wantErr: ErrUntrustedKey},
		{name: "unsigned but required", data: unsigned, opts: PackageOptions{Keys: fixtureKeys(t), RequireSignature: true}, wantErr: ErrNoSignature},
		{name: "too large", data: good, opts: PackageOptions{MaxSize: 1000}, wantErr: ErrPackageTooLarge},
		{name: "control too large", data: unsigned, opts: PackageOptions{MaxControlSize: 1000}, wantErr: ErrPackageTooLarge},
		{name: "bad options", data: good, opts: PackageOptions{RequireSignature: true}, wantErr: ErrInvalidOptions},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadPackage(bytes.NewReader(tt.data), tt.opts)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("ReadPackage error = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestParseControl(t *testing.T) {
	data := readFixture(t, "alpine/alpine-baselayout-3.2.0-r23.aarch64.apk")
	c, info, err := ParseControl(data[666:2229])
	if err != nil {
		t.Fatal(err)
	}
	if c.String() != "Q1LLq2qDNrS/qRnhxQ3hsY/sHbQnc=" || info.Name != "alpine-baselayout" || info.Version != "3.2.0-r23" || info.Arch != "aarch64" {
		t.Errorf("ParseControl = %s %+v", c, info)
	}
	if info.DataHash != "1a3a8e47d2287da6d505d973412cee1ad64bcc17bc5995069e4e932055ecb0c4" {
		t.Errorf("datahash = %s", info.DataHash)
	}
	tests := []struct {
		name    string
		raw     []byte
		wantErr error
	}{
		{name: "trailing bytes", raw: data[666:2230], wantErr: ErrPackageFormat},
		{name: "signature member", raw: data[:666], wantErr: ErrPackageFormat},
		{name: "truncated", raw: data[666:2200], wantErr: ErrPackageFormat},
		{name: "empty", raw: nil, wantErr: ErrPackageFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := ParseControl(tt.raw); !errors.Is(err, tt.wantErr) {
				t.Fatalf("error = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestParsePkgInfo(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    *PkgInfo
		wantErr error
	}{
		{
			name: "full",
			in:   "# Generated by abuild\npkgname = a\npkgver = 1-r0\narch = x86_64\nsize = 10\ndepend = b\ndepend = so:libc.so.6\ninstall_if = c d\nfoo = ignored\ndatahash = " + strings.Repeat("ab", 32) + "\n",
			want: &PkgInfo{Name: "a", Version: "1-r0", Arch: "x86_64", Size: 10, Depends: []string{"b", "so:libc.so.6"}, InstallIf: []string{"c", "d"}, DataHash: strings.Repeat("ab", 32)},
		},
		{name: "missing arch", in: "pkgname = a\npkgver = 1\n", wantErr: ErrPkgInfo},
		{name: "repeated datahash", in: "pkgname = a\npkgver = 1\narch = x\ndatahash = " + strings.Repeat("ab", 32) + "\ndatahash = " + strings.Repeat("cd", 32) + "\n", wantErr: ErrPkgInfo},
		{name: "upper-case datahash", in: "pkgname = a\npkgver = 1\narch = x\ndatahash = " + strings.Repeat("AB", 32) + "\n", wantErr: ErrPkgInfo},
		{name: "short datahash", in: "pkgname = a\npkgver = 1\narch = x\ndatahash = abcd\n", wantErr: ErrPkgInfo},
		{name: "no separator", in: "pkgname=a\n", wantErr: ErrPkgInfo},
		{name: "bad size", in: "pkgname = a\npkgver = 1\narch = x\nsize = -1\n", wantErr: ErrPkgInfo},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePkgInfo([]byte(tt.in))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error = %v, want %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParsePkgInfo (-want +got):\n%s", diff)
			}
		})
	}
}

package apk

import (
	"bytes"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseInstalledRealFixtures(t *testing.T) {
	m := loadManifest(t)
	tests := []struct {
		name      string
		file      string
		wantFirst string // name of the first package
		wantACL   string // an ACL the writer's mode style produces
	}{
		{name: "apk-tools", file: "installed/alpine-3.21.3-x86_64.installed", wantFirst: "alpine-base", wantACL: "0:0:600"},
		{name: "apko", file: "installed/wolfi-base.apko-written.installed", wantFirst: "wolfi-baselayout", wantACL: "0:0:0777"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pkgs, err := ReadInstalled(bytes.NewReader(readFixture(t, tt.file)))
			if err != nil {
				t.Fatal(err)
			}
			if want := m.Files[tt.file].Verified.Packages; len(pkgs) != want || want == 0 {
				t.Errorf("got %d records, want %d", len(pkgs), want)
			}
			if pkgs[0].Name != tt.wantFirst {
				t.Errorf("first = %s, want %s", pkgs[0].Name, tt.wantFirst)
			}
			foundACL, files := false, 0
			for _, p := range pkgs {
				if p.Checksum.Alg != ChecksumSHA1 || len(p.Checksum.String()) != 30 {
					t.Errorf("%s: C: %v", p.Name, p.Checksum)
				}
				if p.InstallIf == "[]" {
					t.Errorf("%s: apko i:[] not normalised", p.Name)
				}
				for _, d := range p.Dirs {
					for _, f := range d.Files {
						files++
						foundACL = foundACL || f.ACL == tt.wantACL
					}
				}
			}
			if !foundACL || files == 0 {
				t.Errorf("ACL %q found=%v, %d files", tt.wantACL, foundACL, files)
			}
		})
	}
}

func TestParseInstalledRecord(t *testing.T) {
	in := "C:Q1LLq2qDNrS/qRnhxQ3hsY/sHbQnc=\nP:a\nV:1-r0\nA:x86_64\ni:[b c]\nU:\nF:\nR:top\nZ:Q1LLq2qDNrS/qRnhxQ3hsY/sHbQnc=\nF:etc\nM:0:0:755\nR:x\na:0:0:600\nf:S\n\n"
	pkgs, err := ParseInstalled([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	c, _ := ParseChecksum("Q1LLq2qDNrS/qRnhxQ3hsY/sHbQnc=")
	want := []InstalledPackage{{
		Entry: Entry{Checksum: c, Name: "a", Version: "1-r0", Arch: "x86_64", InstallIf: "b c"},
		Flags: "S",
		Dirs: []InstalledDir{
			{Path: "", Files: []InstalledFile{{Name: "top", Checksum: c}}},
			{Path: "etc", ACL: "0:0:755", Files: []InstalledFile{{Name: "x", ACL: "0:0:600"}}},
		},
	}}
	if diff := cmp.Diff(want, pkgs); diff != "" {
		t.Errorf("ParseInstalled (-want +got):\n%s", diff)
	}
	if !pkgs[0].FileDigestsSHA256() {
		t.Error("FileDigestsSHA256 = false")
	}
}

func TestParseInstalledRefusals(t *testing.T) {
	const head = "C:Q1LLq2qDNrS/qRnhxQ3hsY/sHbQnc=\nP:a\nV:1\nA:x\n"
	tests := []struct {
		name    string
		in      string
		wantErr error
	}{
		{name: "missing C", in: "P:a\nV:1\nA:x\n", wantErr: ErrMissingField},
		{name: "empty P, V and A (found by FuzzInstalled)", in: "P:\nV:\nA:\nC:Q1LLq2qDNrS/qRnhxQ3hsY/sHbQnc=\n", wantErr: ErrMissingField},
		{name: "empty V", in: "C:Q1LLq2qDNrS/qRnhxQ3hsY/sHbQnc=\nP:a\nV:\nA:x\n", wantErr: ErrMissingField},
		{name: "empty C", in: "C:\nP:a\nV:1\nA:x\n", wantErr: ErrMissingField},
		{name: "MD5 checksum", in: "C:0123456789abcdef0123456789abcdef\nP:a\nV:1\nA:x\n", wantErr: ErrChecksumFormat},
		{name: "bad Z", in: head + "F:\nR:f\nZ:Q1short\n", wantErr: ErrChecksumEncoding},
		{name: "R before F", in: head + "R:f\n", wantErr: ErrInstalledFormat},
		{name: "Z before R", in: head + "F:\nZ:Q1LLq2qDNrS/qRnhxQ3hsY/sHbQnc=\n", wantErr: ErrInstalledFormat},
		{name: "unknown upper-case key", in: head + "X:y\n", wantErr: ErrUnknownField},
		{name: "no colon", in: head + "garbage\n", wantErr: ErrInstalledFormat},
		{name: "repeated P", in: head + "P:b\n", wantErr: ErrDuplicateField},
		{name: "bad size", in: head + "S:12a\n", wantErr: ErrFieldSyntax},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParseInstalled([]byte(tt.in)); !errors.Is(err, tt.wantErr) {
				t.Fatalf("error = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

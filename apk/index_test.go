package apk

import (
	"encoding/hex"
	"errors"
	"path"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestLoadIndexRealFixtures(t *testing.T) {
	m := loadManifest(t)
	keys := fixtureKeys(t)
	n := 0
	for name, f := range m.Files {
		if path.Base(name) != "APKINDEX.tar.gz" && !strings.HasSuffix(name, ".APKINDEX.tar.gz") {
			continue
		}
		n++
		t.Run(name, func(t *testing.T) {
			data := readFixture(t, name)
			x, err := LoadIndex(data, keys, IndexOptions{})
			if err != nil {
				t.Fatalf("LoadIndex: %v", err)
			}
			v := f.Verified
			if got := hex.EncodeToString(x.SHA256[:]); got != f.SHA256 {
				t.Errorf("SHA256 = %s, want %s", got, f.SHA256)
			}
			if x.Len() != v.PackageCount {
				t.Errorf("Len() = %d, want %d", x.Len(), v.PackageCount)
			}
			if len(x.Invalid) != 0 {
				t.Errorf("Invalid = %v, want none", x.Invalid)
			}
			if v.APKINDEXBytes != 0 && x.TextSize != v.APKINDEXBytes {
				t.Errorf("TextSize = %d, want %d", x.TextSize, v.APKINDEXBytes)
			}
			wantDesc := ""
			if v.Description != nil {
				wantDesc = *v.Description
			}
			if x.Description != wantDesc {
				t.Errorf("Description = %q, want %q", x.Description, wantDesc)
			}
			var want, got []IndexSignature
			for _, s := range v.Signatures {
				alg, _, err := ParseSignatureName(".SIGN." + s.Alg + "." + s.KeyName)
				if err != nil {
					t.Fatal(err)
				}
				want = append(want, IndexSignature{Algorithm: alg, KeyName: s.KeyName, Trusted: true, Verified: s.Result == "VERIFIED"})
			}
			for _, s := range x.Signatures {
				s.Size = 0
				got = append(got, s)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Signatures (-want +got):\n%s", diff)
			}
			// Every entry is reachable by both lookups.
			for e := range x.All() {
				if e.Checksum.Alg != ChecksumSHA1 {
					t.Fatalf("%s: checksum %v", e.Name, e.Checksum)
				}
				byNVA, ok := x.Lookup(e.Name, e.Version, e.Arch)
				if !ok || !byNVA.Checksum.Equal(e.Checksum) {
					t.Fatalf("Lookup(%s, %s, %s) = %v, %v", e.Name, e.Version, e.Arch, byNVA.Checksum, ok)
				}
				bySum, ok := x.LookupChecksum(e.Checksum)
				if !ok || bySum.Name != e.Name {
					t.Fatalf("LookupChecksum(%s) = %v, %v", e.Checksum, bySum.Name, ok)
				}
			}
		})
	}
	if n != 9 {
		t.Errorf("found %d index fixtures, want 9", n)
	}
}

func TestLoadIndexAlpineDetails(t *testing.T) {
	data := readFixture(t, "alpine/v3.16-main-x86_64.APKINDEX.tar.gz")
	x, err := LoadIndex(data, fixtureKeys(t, "alpine-devel@lists.alpinelinux.org-6165ee59.rsa.pub"), IndexOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"alpine-devel@lists.alpinelinux.org-6165ee59.rsa.pub"}, x.VerifiedKeys()); diff != "" {
		t.Errorf("VerifiedKeys (-want +got):\n%s", diff)
	}
	if x.Algorithm() != SigRSA {
		t.Errorf("Algorithm = %v", x.Algorithm())
	}
	// MANIFEST field_counts for this index.
	counts := map[string]int{}
	for e := range x.All() {
		for k, v := range map[string]string{"m": e.Maintainer, "D": e.Depends, "i": e.InstallIf, "p": e.Provides} {
			if v != "" {
				counts[k]++
			}
		}
		if e.ProviderPriority != 0 {
			counts["k"]++
		}
	}
	if diff := cmp.Diff(map[string]int{"m": 4789, "D": 3253, "i": 1538, "p": 2024, "k": 72}, counts); diff != "" {
		t.Errorf("field counts (-want +got):\n%s", diff)
	}
	if vs := x.Versions("musl"); len(vs) != 1 {
		t.Errorf("Versions(musl) = %d entries", len(vs))
	}
}

func TestLoadIndexWolfiVersionsAndNoarch(t *testing.T) {
	x, err := LoadIndex(readFixture(t, "wolfi/wolfi-2022-subset.x86_64.APKINDEX.tar.gz"), fixtureKeys(t, "wolfi-signing.rsa.pub"), IndexOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if vs := x.Versions("openssl"); len(vs) != 2 || vs[0].Version == vs[1].Version {
		t.Errorf("Versions(openssl) = %+v, want 2 distinct versions", vs)
	}
	// pmOS: a noarch package is listed in both arch indexes with the same C:.
	keys := fixtureKeys(t, "pmos-59ff5cfb.rsa.pub")
	c, err := ParseChecksum("Q1cT3MEEqHawVavj61ER4TEpwAJ4M=")
	if err != nil {
		t.Fatal(err)
	}
	for _, arch := range []string{"x86_64", "aarch64"} {
		x, err := LoadIndex(readFixture(t, "pmos/"+arch+"/APKINDEX.tar.gz"), keys, IndexOptions{})
		if err != nil {
			t.Fatal(err)
		}
		e, ok := x.LookupChecksum(c)
		if !ok || e.Name != "mkbootimg" || e.Arch != arch {
			t.Errorf("%s: LookupChecksum = %+v, %v", arch, e, ok)
		}
	}
}

func TestLoadIndexRefusals(t *testing.T) {
	alpine := readFixture(t, "alpine/v3.16-main-x86_64.APKINDEX.tar.gz")
	tests := []struct {
		name    string
		data    []byte
		keys    *Keyring
		opts    IndexOptions
		wantErr error
	}{
		{name: "wrong key (real old Alpine key)", data: alpine, keys: fixtureKeys(t, "alpine-devel@lists.alpinelinux.org-4a6a0840.rsa.pub"), wantErr: ErrUntrustedKey},
		{name: "empty keyring", data: alpine, keys: NewKeyring(), wantErr: ErrUntrustedKey},
		{name: "nil keyring", data: alpine, keys: nil, wantErr: ErrUntrustedKey},
		{name: "bit flip after member 1", data: flip(alpine, 10000), keys: fixtureKeys(t), wantErr: ErrBadSignature},
		{name: "truncated", data: alpine[:len(alpine)-100], keys: fixtureKeys(t), wantErr: ErrBadSignature},
		{name: "index part only (unsigned)", data: alpine[667:], keys: fixtureKeys(t), wantErr: ErrNoSignature},
		{name: "signature only", data: alpine[:667], keys: fixtureKeys(t), wantErr: ErrIndexFormat},
		{name: "not gzip", data: []byte("hello"), keys: fixtureKeys(t), wantErr: ErrIndexFormat},
		{name: "empty", data: nil, keys: fixtureKeys(t), wantErr: ErrIndexFormat},
		{name: "too large", data: alpine, keys: fixtureKeys(t), opts: IndexOptions{MaxIndexSize: 1000}, wantErr: ErrIndexTooLarge},
		{name: "decompressed too large", data: alpine, keys: fixtureKeys(t), opts: IndexOptions{MaxDecompressedSize: 1 << 20}, wantErr: ErrIndexTooLarge},
		{name: "line too long", data: alpine, keys: fixtureKeys(t), opts: IndexOptions{MaxLineLength: 100}, wantErr: ErrLineTooLong},
		{name: "bad options", data: alpine, keys: fixtureKeys(t), opts: IndexOptions{MaxLineLength: -1}, wantErr: ErrInvalidOptions},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadIndex(tt.data, tt.keys, tt.opts)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("LoadIndex error = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func flip(b []byte, i int) []byte {
	c := append([]byte(nil), b...)
	c[i] ^= 1
	return c
}

func TestParseIndexUnverifiedUnsafe(t *testing.T) {
	alpine := readFixture(t, "alpine/v3.16-main-x86_64.APKINDEX.tar.gz")
	for _, data := range [][]byte{alpine, alpine[667:]} {
		x, err := ParseIndexUnverifiedUnsafe(data, IndexOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if x.Verified || x.Len() != 4929 || len(x.VerifiedKeys()) != 0 {
			t.Errorf("Verified=%v Len=%d keys=%v", x.Verified, x.Len(), x.VerifiedKeys())
		}
	}
}

func TestIndexChecksumOfAndHas(t *testing.T) {
	x, err := LoadIndex(readFixture(t, "rsa256/APKINDEX.tar.gz"), fixtureKeys(t, "test-rsa256.rsa.pub"), IndexOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want, err := ParseChecksum("Q1LLq2qDNrS/qRnhxQ3hsY/sHbQnc=")
	if err != nil {
		t.Fatal(err)
	}
	other, err := ParseChecksum("Q1w0Rl6HA39gsEkqaJArR01meHQmQ=")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name                 string
		pkg, version, arch   string
		c                    Checksum
		wantFound, wantMatch bool
	}{
		{name: "match", pkg: "alpine-baselayout", version: "3.2.0-r23", arch: "aarch64", c: want, wantFound: true, wantMatch: true},
		{name: "other checksum", pkg: "alpine-baselayout", version: "3.2.0-r23", arch: "aarch64", c: other, wantFound: true},
		{name: "other arch", pkg: "alpine-baselayout", version: "3.2.0-r23", arch: "x86_64", c: want},
		{name: "other version", pkg: "alpine-baselayout", version: "3.2.0-r22", arch: "aarch64", c: want},
		{name: "zero checksum", pkg: "alpine-baselayout", version: "3.2.0-r23", arch: "aarch64", wantFound: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, found := x.ChecksumOf(tt.pkg, tt.version, tt.arch)
			if found != tt.wantFound || (found && !got.Equal(want)) {
				t.Errorf("ChecksumOf = %v, %v", got, found)
			}
			if match := x.Has(tt.pkg, tt.version, tt.arch, tt.c); match != tt.wantMatch {
				t.Errorf("Has = %v, want %v", match, tt.wantMatch)
			}
		})
	}
}

// TestParseTextEmptyRequiredField: "P:" with nothing after it is as good as
// no P: at all (found by FuzzIndexText; the input is in testdata/fuzz).
func TestParseTextEmptyRequiredField(t *testing.T) {
	const good = "C:Q1LLq2qDNrS/qRnhxQ3hsY/sHbQnc=\nP:a\nV:1\nA:x\n"
	for _, tt := range []struct{ name, text string }{
		{"empty P", "C:Q1LLq2qDNrS/qRnhxQ3hsY/sHbQnc=\nP:\nV:1\nA:x\n"},
		{"empty V", "C:Q1LLq2qDNrS/qRnhxQ3hsY/sHbQnc=\nP:a\nV:\nA:x\n"},
		{"empty A", "C:Q1LLq2qDNrS/qRnhxQ3hsY/sHbQnc=\nP:a\nV:1\nA:\n"},
		{"empty C", "C:\nP:a\nV:1\nA:x\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			x := &Index{}
			if err := x.parseText(good+"\n"+tt.text, IndexOptions{}.withDefaults()); err != nil {
				t.Fatal(err)
			}
			if x.Len() != 1 || len(x.Invalid) != 1 || !errors.Is(x.Invalid[0].Err, ErrMissingField) {
				t.Errorf("Len = %d, Invalid = %v; want the good entry and one ErrMissingField", x.Len(), x.Invalid)
			}
			y := &Index{}
			if err := y.parseText(tt.text, IndexOptions{RejectInvalidEntries: true}.withDefaults()); !errors.Is(err, ErrMissingField) {
				t.Errorf("with RejectInvalidEntries: %v, want ErrMissingField", err)
			}
		})
	}
}

// TestIndexAttested: Attested agrees with the materialised Entry for every
// entry of the real fixtures.
func TestIndexAttested(t *testing.T) {
	for _, tt := range []struct{ file, key string }{
		{"alpine/v3.16-main-x86_64.APKINDEX.tar.gz", "alpine-devel@lists.alpinelinux.org-6165ee59.rsa.pub"},
		{"wolfi/wolfi-2022-subset.x86_64.APKINDEX.tar.gz", "wolfi-signing.rsa.pub"},
		{"pmos/x86_64/APKINDEX.tar.gz", "pmos-59ff5cfb.rsa.pub"},
	} {
		x, err := LoadIndex(readFixture(t, tt.file), fixtureKeys(t, tt.key), IndexOptions{})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for e := range x.All() {
			c, license, origin, ok := x.Attested(e.Name, e.Version, e.Arch)
			if !ok || !c.Equal(e.Checksum) || license != e.License || origin != e.Origin {
				t.Fatalf("%s: Attested(%s %s %s) = %v %q %q %v; want %v %q %q", tt.file, e.Name, e.Version, e.Arch, c, license, origin, ok, e.Checksum, e.License, e.Origin)
			}
			n++
		}
		if _, _, _, ok := x.Attested("no-such-package", "1-r0", "x86_64"); ok || n == 0 {
			t.Errorf("%s: %d entries; a missing package was found: %v", tt.file, n, ok)
		}
	}
}

// TestIndexIdentities: Identities yields the identity of every entry All
// yields, in the same order.
func TestIndexIdentities(t *testing.T) {
	x, err := LoadIndex(readFixture(t, "alpine/v3.16-main-x86_64.APKINDEX.tar.gz"), fixtureKeys(t, "alpine-devel@lists.alpinelinux.org-6165ee59.rsa.pub"), IndexOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var want, got []Identity
	for e := range x.All() {
		want = append(want, Identity{Name: e.Name, Version: e.Version, Arch: e.Arch, Checksum: e.Checksum})
	}
	for id := range x.Identities() {
		got = append(got, id)
	}
	if len(want) != 4929 {
		t.Fatalf("%d entries, want 4929", len(want))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Identities (-All +Identities):\n%s", diff)
	}
}

package testrepo

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/vouchdev/vouch/apk"
)

func TestPackageBuild(t *testing.T) {
	key := MustKey(t, "test.rsa.pub")
	tests := []struct {
		name       string
		pkg        Package
		opts       apk.PackageOptions
		wantErr    error
		wantSameQ1 bool // Q1 of the served bytes equals the good Entry's C:
	}{
		{name: "unsigned", pkg: Package{}, wantSameQ1: true},
		{name: "signed RSA256", pkg: Package{Signer: key}, opts: apk.PackageOptions{Keys: key.Keyring(), RequireSignature: true}, wantSameQ1: true},
		{name: "signed RSA (SHA-1)", pkg: Package{Signer: key, SignAlg: apk.SigRSA}, opts: apk.PackageOptions{Keys: key.Keyring()}, wantSameQ1: true},
		{name: "signed RSA512", pkg: Package{Signer: key, SignAlg: apk.SigRSA512}, opts: apk.PackageOptions{Keys: key.Keyring()}, wantSameQ1: true},
		{name: "big data", pkg: Package{DataSize: 3 << 20}, wantSameQ1: true},
		{name: "wrong datahash", pkg: Package{Defect: PkgWrongDatahash}, wantErr: apk.ErrDataHashMismatch, wantSameQ1: true},
		{name: "missing datahash", pkg: Package{Defect: PkgMissingDatahash}, wantErr: apk.ErrNoDataHash, wantSameQ1: true},
		{name: "tampered data", pkg: Package{DataSize: 1000, Defect: PkgTamperedData}, wantErr: apk.ErrDataHashMismatch, wantSameQ1: true},
		{name: "tampered control", pkg: Package{Defect: PkgTamperedControl}, wantSameQ1: false},
		{name: "wrong key", pkg: Package{Signer: key, Defect: PkgWrongKey}, opts: apk.PackageOptions{Keys: key.Keyring()}, wantErr: apk.ErrBadSignature, wantSameQ1: true},
		{name: "truncated", pkg: Package{Defect: PkgTruncated}, wantErr: apk.ErrDataHashMismatch, wantSameQ1: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.pkg.Name, tt.pkg.Version, tt.pkg.Arch = "hello", "1.0-r0", "x86_64"
			b, err := tt.pkg.Build()
			if err != nil {
				t.Fatal(err)
			}
			p, err := apk.ReadPackage(bytes.NewReader(b.Bytes), tt.opts)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("ReadPackage error = %v, want %v", err, tt.wantErr)
			}
			if p == nil {
				t.Fatal("nil package")
			}
			if got := p.Checksum.Equal(b.Entry.Checksum); got != tt.wantSameQ1 {
				t.Errorf("Q1 %s vs entry %s: equal=%v, want %v", p.Checksum, b.Entry.Checksum, got, tt.wantSameQ1)
			}
			if p.Info.Name != "hello" || p.Info.Version != "1.0-r0" || p.Info.Arch != "x86_64" {
				t.Errorf("PKGINFO = %+v", p.Info)
			}
			if tt.pkg.Defect == PkgOK && p.Size != b.Entry.Size {
				t.Errorf("Size = %d, entry says %d", p.Size, b.Entry.Size)
			}
			c, info, err := apk.ParseControl(b.Control)
			if err != nil || !c.Equal(b.Checksum) || info.Name != "hello" {
				t.Errorf("ParseControl = %v, %+v, %v", c, info, err)
			}
		})
	}
}

func TestIndexBuild(t *testing.T) {
	key := MustKey(t, "test.rsa.pub")
	other := MustKey(t, "other.rsa.pub")
	pkg, err := Package{Name: "hello", Version: "1.0-r0", Arch: "x86_64"}.Build()
	if err != nil {
		t.Fatal(err)
	}
	entries := append([]apk.Entry{pkg.Entry}, GenerateEntries(50, "x86_64", 1)...)
	tests := []struct {
		name       string
		ix         Index
		keys       *apk.Keyring
		opts       apk.IndexOptions
		wantErr    error
		wantKeys   []string
		wantInval  int
		wantDesc   string
		wantLength int
	}{
		{name: "RSA256", ix: Index{Description: "v1"}, keys: key.Keyring(), wantKeys: []string{"test.rsa.pub"}, wantDesc: "v1"},
		{name: "RSA SHA-1, description last", ix: Index{Signers: []Signer{{Key: key, Alg: apk.SigRSA}}, DescriptionLast: true}, keys: key.Keyring(), wantKeys: []string{"test.rsa.pub"}},
		{name: "RSA512, no description", ix: Index{Signers: []Signer{{Key: key, Alg: apk.SigRSA512}}, NoDescription: true}, keys: key.Keyring(), wantKeys: []string{"test.rsa.pub"}},
		{name: "two signers, one trusted", ix: Index{Signers: []Signer{{Key: other}, {Key: key}}}, keys: key.Keyring(), wantKeys: []string{"test.rsa.pub"}},
		{name: "two signers, both trusted", ix: Index{Signers: []Signer{{Key: other}, {Key: key}}}, keys: Keyring(key, other), wantKeys: []string{"other.rsa.pub", "test.rsa.pub"}},
		{name: "untrusted", ix: Index{}, keys: other.Keyring(), wantErr: apk.ErrUntrustedKey},
		{name: "unsigned", ix: Index{Defect: IdxUnsigned}, keys: key.Keyring(), wantErr: apk.ErrNoSignature},
		{name: "bit flip", ix: Index{Defect: IdxBitFlip}, keys: key.Keyring(), wantErr: apk.ErrBadSignature},
		{name: "truncated", ix: Index{Defect: IdxTruncated}, keys: key.Keyring(), wantErr: apk.ErrBadSignature},
		{name: "wrong key", ix: Index{Defect: IdxWrongKey}, keys: key.Keyring(), wantErr: apk.ErrBadSignature},
		{name: "trusted bad signature beside a good one", ix: Index{Signers: []Signer{{Key: key}, {Key: other}}, Defect: IdxWrongKey}, keys: Keyring(key, other), wantErr: apk.ErrBadSignature},
		{name: "DSA", ix: Index{Defect: IdxDSA}, keys: key.Keyring(), wantErr: apk.ErrUnknownSignatureAlgorithm},
		{name: "signature too large", ix: Index{Defect: IdxSignatureTooLarge}, keys: key.Keyring(), wantErr: apk.ErrSignatureTooLarge},
		{name: "non-signature entry", ix: Index{Defect: IdxNonSignatureEntry}, keys: key.Keyring(), wantErr: apk.ErrNonSignatureEntry},
		{name: "extra member", ix: Index{Defect: IdxExtraMember}, keys: key.Keyring(), wantErr: apk.ErrUnexpectedMember},
		{name: "gzip bomb", ix: Index{Defect: IdxGzipBomb, BombSize: 8 << 20}, keys: key.Keyring(), opts: apk.IndexOptions{MaxDecompressedSize: 4 << 20}, wantErr: apk.ErrIndexTooLarge},
		{name: "long line", ix: Index{Defect: IdxLongLine}, keys: key.Keyring(), wantErr: apk.ErrLineTooLong},
		{name: "bad checksum entry", ix: Index{Defect: IdxBadChecksumEntry}, keys: key.Keyring(), wantKeys: []string{"test.rsa.pub"}, wantInval: 1},
		{name: "bad checksum entry, strict", ix: Index{Defect: IdxBadChecksumEntry}, keys: key.Keyring(), opts: apk.IndexOptions{RejectInvalidEntries: true}, wantErr: apk.ErrEntryChecksum},
		{name: "no APKINDEX", ix: Index{Defect: IdxNoAPKINDEX}, keys: key.Keyring(), wantErr: apk.ErrMissingAPKINDEX},
		{name: "signature only", ix: Index{Defect: IdxSignatureOnly}, keys: key.Keyring(), wantErr: apk.ErrIndexFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.ix.Entries = entries
			if tt.ix.Signers == nil {
				tt.ix.Signers = []Signer{{Key: key}}
			}
			data, err := tt.ix.Build()
			if err != nil {
				t.Fatal(err)
			}
			x, err := apk.LoadIndex(data, tt.keys, tt.opts)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("LoadIndex error = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if diff := cmp.Diff(tt.wantKeys, x.VerifiedKeys()); diff != "" {
				t.Errorf("VerifiedKeys (-want +got):\n%s", diff)
			}
			if x.Len() != len(entries) || len(x.Invalid) != tt.wantInval || x.Description != tt.wantDesc {
				t.Errorf("Len=%d Invalid=%v Description=%q", x.Len(), x.Invalid, x.Description)
			}
			// Round trip: every entry comes back exactly.
			for i, want := range entries {
				if diff := cmp.Diff(want, x.Entry(i)); diff != "" {
					t.Fatalf("entry %d (-want +got):\n%s", i, diff)
				}
			}
			if e, ok := x.Lookup("hello", "1.0-r0", "x86_64"); !ok || !e.Checksum.Equal(pkg.Checksum) {
				t.Errorf("Lookup(hello) = %v, %v", e.Checksum, ok)
			}
		})
	}
}

func TestIndexConflictingEntries(t *testing.T) {
	key := MustKey(t, "test.rsa.pub")
	e := GenerateEntries(3, "x86_64", 2)
	dup := e[1]
	dup.Checksum = e[2].Checksum
	data, err := Index{Entries: append(e, dup), Signers: []Signer{{Key: key}}}.Build()
	if err != nil {
		t.Fatal(err)
	}
	x, err := apk.LoadIndex(data, key.Keyring(), apk.IndexOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := x.Lookup(e[1].Name, e[1].Version, e[1].Arch); ok || x.Len() != 2 || len(x.Invalid) != 2 {
		t.Errorf("conflict: lookup ok=%v Len=%d Invalid=%v", ok, x.Len(), x.Invalid)
	}
	if _, err := apk.LoadIndex(data, key.Keyring(), apk.IndexOptions{RejectInvalidEntries: true}); !errors.Is(err, apk.ErrConflictingEntries) {
		t.Errorf("strict: %v", err)
	}
}

func TestWriteRepo(t *testing.T) {
	key := MustKey(t, "test.rsa.pub")
	pkg, err := Package{Name: "hello", Version: "1.0-r0", Arch: "aarch64", Signer: key}.Build()
	if err != nil {
		t.Fatal(err)
	}
	idx, err := Index{Entries: []apk.Entry{pkg.Entry}, Signers: []Signer{{Key: key}}}.Build()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := WriteRepo(dir, "aarch64", idx, pkg); err != nil {
		t.Fatal(err)
	}
	if err := WriteKeys(filepath.Join(dir, "keys"), key); err != nil {
		t.Fatal(err)
	}
	keys, err := apk.LoadKeyring(filepath.Join(dir, "keys"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(dir, "aarch64", "APKINDEX.tar.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	x, err := apk.ReadIndex(f, keys, apk.IndexOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "aarch64", "hello-1.0-r0.apk"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := apk.ReadPackage(bytes.NewReader(b), apk.PackageOptions{Keys: keys, RequireSignature: true})
	if err != nil {
		t.Fatal(err)
	}
	if e, ok := x.LookupChecksum(p.Checksum); !ok || e.Name != "hello" || e.Size != p.Size {
		t.Errorf("LookupChecksum = %+v, %v", e, ok)
	}
}

func TestGenerateEntriesSize(t *testing.T) {
	e := GenerateEntries(2000, "x86_64", 1)
	text := Index{Entries: e}.Text()
	per := len(text) / len(e)
	if per < 380 || per > 440 {
		t.Errorf("%d bytes per entry, want about 410", per)
	}
	names := map[string]int{}
	for _, x := range e {
		names[x.Name]++
	}
	if len(names) > len(e)/5 {
		t.Errorf("%d names for %d entries: want many versions per name", len(names), len(e))
	}
}

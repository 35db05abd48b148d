package apk

import (
	"bytes"
	"errors"
	"path"
	"strings"
	"testing"
)

func TestParseLockRealFixtures(t *testing.T) {
	m := loadManifest(t)
	tests := []struct {
		name         string
		file         string
		wantUnsigned int
		wantKeyrings int
	}{
		{name: "wolfi real", file: "lock/wolfi-real.apko.lock.json", wantUnsigned: 12, wantKeyrings: 2},
		{name: "apko discover", file: "lock/apko-discover.lock.json", wantUnsigned: -1, wantKeyrings: -1},
		{name: "apko testrepo", file: "apko-testrepo/apko.lock.json", wantUnsigned: 0, wantKeyrings: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := ParseLock(bytes.NewReader(readFixture(t, tt.file)))
			if err != nil {
				t.Fatal(err)
			}
			if want := m.Files[tt.file].Verified.Packages; len(l.Contents.Packages) != want || want == 0 {
				t.Errorf("got %d packages, want %d", len(l.Contents.Packages), want)
			}
			unsigned := 0
			for _, p := range l.Contents.Packages {
				if p.Signature.Range == "" {
					unsigned++
				}
			}
			if tt.wantUnsigned >= 0 && unsigned != tt.wantUnsigned {
				t.Errorf("unsigned = %d, want %d", unsigned, tt.wantUnsigned)
			}
			if tt.wantKeyrings >= 0 && len(l.Contents.Keyring) != tt.wantKeyrings {
				t.Errorf("keyring = %d, want %d", len(l.Contents.Keyring), tt.wantKeyrings)
			}
		})
	}
}

// TestLockMatchesPackages: MANIFEST says the apko test lock's ranges and
// checksums equal the real packages' members.
func TestLockMatchesPackages(t *testing.T) {
	l, err := ParseLock(bytes.NewReader(readFixture(t, "apko-testrepo/apko.lock.json")))
	if err != nil {
		t.Fatal(err)
	}
	for _, lp := range l.Contents.Packages {
		file := "apko-testrepo/" + lp.Architecture + "/" + path.Base(lp.URL)
		p, err := ReadPackage(bytes.NewReader(readFixture(t, file)), PackageOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := lp.MatchPackage(p); err != nil {
			t.Errorf("%s: %v", file, err)
		}
	}
	// A different package must not match.
	other, err := ReadPackage(bytes.NewReader(readFixture(t, "wolfi/wolfi-base-1-r1.aarch64.apk")), PackageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Contents.Packages[0].MatchPackage(other); !errors.Is(err, ErrLockChecksumMismatch) {
		t.Errorf("MatchPackage(other) = %v", err)
	}
	// The wolfi keyring content equals the fixture key.
	wl, err := ParseLock(bytes.NewReader(readFixture(t, "lock/apko-discover.lock.json")))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range wl.Contents.Keyring {
		if k.Content == "" {
			continue
		}
		if _, err := ParsePublicKey([]byte(k.Content)); err != nil {
			t.Errorf("keyring %s: %v", k.Name, err)
		}
	}
}

func TestParseLockRefusals(t *testing.T) {
	good := string(readFixture(t, "apko-testrepo/apko.lock.json"))
	first := `"checksum": "Q1m6wB0UFePGN8Drz82pC8y2uAiu8="`
	if !strings.Contains(good, first) {
		t.Fatal("fixture changed")
	}
	tests := []struct {
		name    string
		in      string
		wantErr error
	}{
		{name: "old lock without checksum", in: strings.Replace(good, first, `"checksum": ""`, 1), wantErr: ErrLockNoChecksum},
		{name: "checksum differs from control", in: strings.Replace(good, first, `"checksum": "Q1LLq2qDNrS/qRnhxQ3hsY/sHbQnc="`, 1), wantErr: ErrLockChecksumMismatch},
		{name: "X1 checksum", in: strings.Replace(good, first, `"checksum": "X19bac01d415e3c6378c0ebbcf36a92f32cb6b88af"`, 1), wantErr: ErrLockFormat},
		{name: "version v2", in: strings.Replace(good, `"version": "v1"`, `"version": "v2"`, 1), wantErr: ErrLockFormat},
		{name: "bad range", in: strings.Replace(good, `"bytes=647-1628"`, `"bytes=1628-647"`, 1), wantErr: ErrLockFormat},
		{name: "not JSON", in: "{", wantErr: ErrLockFormat},
		{name: "two documents", in: good + good, wantErr: ErrLockFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParseLock(strings.NewReader(tt.in)); !errors.Is(err, tt.wantErr) {
				t.Fatalf("error = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

package attest

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/vouchdev/vouch/apk"
)

// testTime is the fixed verification time of test inputs.
var testTime = time.Date(2026, 11, 5, 10, 30, 0, 0, time.UTC)

const testSubjectSHA256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

func hexOf(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// testInput returns a deterministic input with n packages; every third has
// no datahash and every fifth matched history, so all code paths appear.
func testInput(n int) Input {
	in := Input{
		Subject: Subject{
			Name:   "registry.example/team/app",
			Digest: map[string]string{"sha256": testSubjectSHA256},
		},
		Verifier: Verifier{ID: "https://vouch.example/verifier", Version: "v0.1.0"},
		Policy:   Policy{URI: "https://vouch.example/policy/prod", SHA256: hexOf("policy")},
		Time:     testTime,
	}
	wolfi := Repository{Name: "wolfi", URL: "https://packages.wolfi.dev/os", Supplier: "Organization: Wolfi", Distro: "wolfi"}
	alpine := Repository{Name: "alpine-main", URL: "https://dl-cdn.alpinelinux.org/alpine/v3.22/main", Supplier: "Alpine Linux", Distro: "alpine"}
	fetched := time.Date(2026, 11, 5, 10, 0, 0, 0, time.UTC)
	licenses := []string{"MIT", "GPL-2.0-or-later AND MIT", "custom", "Apache-2.0 OR MIT", "bsd", "LGPL-2.1+"}
	for i := range n {
		repo, arch := wolfi, "x86_64"
		if i%2 == 1 {
			repo, arch = alpine, "aarch64"
		}
		name := fmt.Sprintf("pkg%03d", i)
		if i == 1 {
			name = "libstdc++"
		}
		version := fmt.Sprintf("1.%d.0-r%d", i, i%3)
		p := Package{
			Name:       name,
			Version:    version,
			Arch:       arch,
			Checksum:   apk.SHA1Checksum(sha1.Sum([]byte(name + version))),
			License:    licenses[i%len(licenses)],
			Origin:     fmt.Sprintf("src%03d", i/2),
			Repository: repo,
			Evidence: Evidence{
				IndexURL:    repo.URL + "/" + arch + "/APKINDEX.tar.gz",
				IndexSHA256: hexOf(repo.Name + arch),
				SigningKey:  repo.Name + "-signing.rsa.pub",
				FetchedAt:   fetched,
				Match:       MatchCurrent,
			},
		}
		if i%3 != 2 {
			p.DataHash = hexOf("data" + name)
		}
		if i%5 == 4 {
			p.Evidence.Match = MatchHistory
		}
		in.Packages = append(in.Packages, p)
	}
	return in
}

func newTestSigner(t testing.TB, kt KeyType) Signer {
	t.Helper()
	var (
		s   Signer
		err error
	)
	switch kt {
	case KeyEd25519:
		_, priv, gerr := ed25519.GenerateKey(rand.Reader)
		if gerr != nil {
			t.Fatal(gerr)
		}
		s, err = NewSigner(priv)
	default:
		priv, gerr := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if gerr != nil {
			t.Fatal(gerr)
		}
		s, err = NewSigner(priv)
	}
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func keySetOf(t testing.TB, signers ...Signer) *KeySet {
	t.Helper()
	var pems [][]byte
	for _, s := range signers {
		p, _, err := PublicKeyPEM(s)
		if err != nil {
			t.Fatal(err)
		}
		pems = append(pems, p)
	}
	ks, err := NewKeySetPEM(pems...)
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

var zeroTime time.Time

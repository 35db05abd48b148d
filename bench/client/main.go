// Command benchfixtures writes the inputs of the client and deploy benchmarks: large .apk files for digest throughput, and a signed SPDX bundle with its public key for attestation checks.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/vouchdev/vouch/apk"
	"github.com/vouchdev/vouch/attest"
	"github.com/vouchdev/vouch/internal/testrepo"
)

func main() {
	out := flag.String("out", "", "folder to write into (required)")
	apks := flag.Int("apks", 8, "number of .apk files")
	size := flag.Int("size", 64<<20, "data size of each .apk in bytes (incompressible)")
	pkgs := flag.Int("packages", 200, "packages listed in the SPDX bundle")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "benchfixtures: -out is required")
		os.Exit(2)
	}
	if err := run(*out, *apks, *size, *pkgs); err != nil {
		fmt.Fprintln(os.Stderr, "benchfixtures:", err)
		os.Exit(1)
	}
}

func run(out string, apks, size, pkgs int) error {
	apkDir := filepath.Join(out, "apks")
	if err := os.MkdirAll(apkDir, 0o755); err != nil {
		return err
	}
	for i := range apks {
		b, err := testrepo.Package{Name: fmt.Sprintf("big%d", i), Version: "1.0-r0", Arch: "x86_64", DataSize: size}.Build()
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(apkDir, b.FileName), b.Bytes, 0o644); err != nil {
			return err
		}
	}

	privPEM, pubPEM, _, err := attest.GenerateKey(attest.KeyECDSAP256)
	if err != nil {
		return err
	}
	signer, err := attest.ParsePrivateKeyPEM(privPEM)
	if err != nil {
		return err
	}
	subject := sha256.Sum256([]byte("bench image"))
	subjectHex := hex.EncodeToString(subject[:])
	in := attest.Input{
		Subject:  attest.Subject{Name: "registry.example/bench", Digest: map[string]string{"sha256": subjectHex}},
		Verifier: attest.Verifier{Version: "bench"},
		Policy:   attest.Policy{URI: "https://vouch.example/policy", SHA256: subjectHex},
		Time:     time.Now().UTC().Truncate(time.Second),
	}
	fetched := time.Now().Add(-time.Hour)
	for i := range pkgs {
		sum := sha256.Sum256(fmt.Appendf(nil, "pkg%d", i))
		var q1 [20]byte
		copy(q1[:], sum[:])
		in.Packages = append(in.Packages, attest.Package{
			Name: fmt.Sprintf("pkg%d", i), Version: "1.0-r0", Arch: "x86_64",
			Checksum: apk.SHA1Checksum(q1), DataHash: hex.EncodeToString(sum[:]), License: "MIT",
			Repository: attest.Repository{Name: "wolfi", URL: "https://packages.wolfi.dev/os", Distro: "wolfi"},
			Evidence: attest.Evidence{
				IndexURL: "https://packages.wolfi.dev/os/x86_64/APKINDEX.tar.gz", IndexSHA256: subjectHex,
				SigningKey: "wolfi-signing.rsa.pub", FetchedAt: fetched, Match: attest.MatchCurrent,
			},
		})
	}
	atts, err := attest.Issue(context.Background(), signer, in)
	if err != nil {
		return err
	}
	for name, data := range map[string][]byte{
		"vouch.pub":          pubPEM,
		"spdx.sigstore.json": atts[0].Bundle,
		"digest":             []byte(subjectHex + "\n"),
	} {
		if err := os.WriteFile(filepath.Join(out, name), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

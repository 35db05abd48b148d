package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/vouchdev/vouch/client"
	"github.com/vouchdev/vouch/client/imagefs"
	"github.com/vouchdev/vouch/client/ociattest"
	vouchv1 "github.com/vouchdev/vouch/proto/vouch/v1"
)

// Exit codes of vouch verify.
const (
	verifyExitOK      = 0 // every package verified (and written/attached)
	verifyExitError   = 1 // usage, I/O, network or server error
	verifyExitRefused = 2 // the server refused at least one package
	verifyExitInput   = 3 // refused locally: the input is inconsistent
)

// progressThreshold is the input size from which progress goes to stderr.
const progressThreshold = 50

type verifyFlags struct {
	server, tokenFile, ca, cert, key, serverName string
	apks                                         []string
	lock, apkDir, rootfs, image                  string
	subject, subjectName, repository, arch       string
	out                                          string
	attach, asJSON, noControl, printClaims       bool
	timeStr                                      string
	timeout                                      time.Duration
}

func newVerifyCmd() *cobra.Command {
	var f verifyFlags
	cmd := &cobra.Command{
		Use:   "verify --server ADDR (--apk FILE... | --lock F [--apk-dir D] | --rootfs DIR | --image REF) [flags]",
		Short: "Ask a vouch server to verify installed packages and issue attestations",
		Long: `verify builds package claims from one input and asks the vouch server to
check every one against the repository's signed index:

  --apk FILE...        .apk files (streamed once; Q1 checksum and datahash)
  --lock F             an apko lock file; with --apk-dir D the .apk files in D
                       are digested too and a lock that disagrees is refused
  --rootfs DIR         the installed database of a root filesystem
                       (lib/apk/db/installed or usr/lib/apk/db/installed)
  --image REF          an OCI image: its installed database from the layers;
                       the subject is the manifest digest (for a multi-arch
                       index: every platform manifest and the index itself)

Attestations are requested when there is a subject (--image, or --subject
sha256:HEX for the other inputs). With --out DIR each subject gets
<hex>.spdx.sigstore.json, <hex>.vsa.sigstore.json, <hex>.spdx.dsse.json and
<hex>.vsa.dsse.json; with --attach (needs --image) they are pushed to the
image's registry as a sha256-<hex>.att image and as OCI referrers. Nothing
is written or pushed unless every package is verified.

Connection: plaintext only to a loopback address; otherwise TLS (--ca for a
private CA, --cert/--key for mTLS) and optionally --token-file.

Exit codes: 0 every package verified; 1 usage, I/O, network or server
error; 2 the server refused at least one package (verdicts and evidence
are printed); 3 refused locally (e.g. a lock that disagrees with the .apk
files, or an .apk whose data does not match its datahash).`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			f.apks = append(f.apks, args...)
			return runVerify(cmd.Context(), f, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.server, "server", "", "vouch server address host:port (required)")
	fl.StringVar(&f.tokenFile, "token-file", "", "file holding a bearer token")
	fl.StringVar(&f.ca, "ca", "", "PEM CA bundle for the server certificate")
	fl.StringVar(&f.cert, "cert", "", "client certificate (mTLS)")
	fl.StringVar(&f.key, "key", "", "client key (mTLS)")
	fl.StringVar(&f.serverName, "server-name", "", "name to check in the server certificate")
	fl.StringSliceVar(&f.apks, "apk", nil, ".apk files (repeat, or list after the flags)")
	fl.StringVar(&f.lock, "lock", "", "apko lock file")
	fl.StringVar(&f.apkDir, "apk-dir", "", "with --lock: folder of the .apk files to check the lock against")
	fl.StringVar(&f.rootfs, "rootfs", "", "root filesystem folder")
	fl.StringVar(&f.image, "image", "", "OCI image reference")
	fl.StringVar(&f.subject, "subject", "", "subject digest sha256:HEX (inputs other than --image)")
	fl.StringVar(&f.subjectName, "subject-name", "", "subject name (default: the image repository, or \"unknown\")")
	fl.StringVar(&f.repository, "repository", "", "repository URL the packages came from, where the input lacks it")
	fl.StringVar(&f.arch, "arch", "", "arch of the index noarch packages were installed from")
	fl.StringVar(&f.out, "out", "", "write bundles and envelopes into this folder")
	fl.BoolVar(&f.attach, "attach", false, "with --image: push the attestations to the image's registry")
	fl.BoolVar(&f.asJSON, "json", false, "print JSON instead of a table")
	fl.BoolVar(&f.noControl, "no-control", false, "with --apk: do not send the control members")
	fl.BoolVar(&f.printClaims, "print-claims", false, "print the claims as JSON and exit without contacting the server")
	fl.StringVar(&f.timeStr, "time", "", "time to record in the attestations (RFC 3339)")
	fl.DurationVar(&f.timeout, "timeout", 5*time.Minute, "overall time limit")
	return cmd
}

// printClaims writes the targets' subjects and claims as JSON (control
// members as base64), one document.
func printClaims(w io.Writer, targets []client.Target) error {
	type target struct {
		Subject  string            `json:"subject,omitempty"`
		Platform string            `json:"platform,omitempty"`
		Claims   []json.RawMessage `json:"claims"`
	}
	var out []target
	for _, t := range targets {
		tj := target{Platform: t.Platform}
		if t.Subject.SHA256 != "" {
			tj.Subject = t.Subject.Digest()
		}
		for _, c := range t.Claims {
			b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(c)
			if err != nil {
				return err
			}
			tj.Claims = append(tj.Claims, b)
		}
		out = append(out, tj)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// verifyTargetJSON is one subject's outcome in --json output. Field names
// are stable.
type verifyTargetJSON struct {
	Subject  string            `json:"subject,omitempty"`
	Platform string            `json:"platform,omitempty"`
	Verdict  string            `json:"verdict"`
	Counts   map[string]uint32 `json:"counts,omitempty"`
	LedgerID string            `json:"ledger_id,omitempty"`
	Results  []json.RawMessage `json:"results"`
}

type verifyJSON struct {
	OK       bool               `json:"ok"`
	Error    string             `json:"error,omitempty"`
	Targets  []verifyTargetJSON `json:"targets"`
	Files    []string           `json:"files,omitempty"`
	Attached []string           `json:"attached,omitempty"`
}

func usage(msg string) error { return &exitError{code: verifyExitError, msg: "verify: " + msg} }

func runVerify(ctx context.Context, f verifyFlags, stdout, stderr io.Writer) error {
	if ctx == nil {
		ctx = context.Background()
	}
	n := 0
	for _, set := range []bool{len(f.apks) > 0, f.lock != "", f.rootfs != "", f.image != ""} {
		if set {
			n++
		}
	}
	switch {
	case f.server == "" && !f.printClaims:
		return usage("--server is required (or --print-claims)")
	case n != 1:
		return usage("give exactly one of --apk, --lock, --rootfs or --image")
	case f.apkDir != "" && f.lock == "":
		return usage("--apk-dir needs --lock")
	case f.attach && f.image == "":
		return usage("--attach needs --image")
	case f.image != "" && f.subject != "":
		return usage("--subject cannot be used with --image (the subject is the image digest)")
	case f.image == "" && f.subject == "" && f.out != "":
		return usage("--out needs a subject: give --subject sha256:HEX")
	}
	var when time.Time
	if f.timeStr != "" {
		t, err := time.Parse(time.RFC3339, f.timeStr)
		if err != nil {
			return usage("--time: " + err.Error())
		}
		when = t
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()

	progress := func(what string) func(int, int) {
		step := 0
		return func(done, total int) {
			if total < progressThreshold {
				return
			}
			if p := done * 10 / total; p > step || done == total {
				step = p
				fmt.Fprintf(stderr, "%s %d/%d\n", what, done, total)
			}
		}
	}
	ropts := []remote.Option{remote.WithAuthFromKeychain(authn.DefaultKeychain)}

	// Build the targets.
	var targets []client.Target
	var err error
	switch {
	case len(f.apks) > 0:
		var claims []*vouchv1.PackageClaim
		claims, err = client.ClaimsFromAPKs(ctx, f.apks, client.APKOptions{
			Repository: f.repository, Arch: f.arch, Control: !f.noControl, Progress: progress("digested"),
		})
		targets = []client.Target{{Claims: claims}}
	case f.lock != "":
		var lf *os.File
		if lf, err = os.Open(f.lock); err == nil {
			var claims []*vouchv1.PackageClaim
			claims, err = client.ClaimsFromLock(ctx, lf, client.LockOptions{Repository: f.repository, APKDir: f.apkDir, Progress: progress("digested")})
			lf.Close()
			targets = []client.Target{{Claims: claims}}
		}
	case f.rootfs != "":
		var files *imagefs.Files
		if files, err = imagefs.ReadRootfs(f.rootfs); err == nil {
			var claims []*vouchv1.PackageClaim
			claims, err = client.ClaimsFromInstalled(files, client.InstalledOptions{Repository: f.repository, Arch: f.arch})
			targets = []client.Target{{Claims: claims}}
		} else {
			err = fmt.Errorf("%w: %w", client.ErrInput, err)
		}
	default:
		fmt.Fprintf(stderr, "reading %s\n", f.image)
		targets, err = client.ImageTargets(ctx, f.image, client.ImageOptions{Repository: f.repository, Arch: f.arch, Remote: ropts})
	}
	if err != nil {
		code := verifyExitError
		if errors.Is(err, client.ErrInput) || errors.Is(err, client.ErrLockMismatch) {
			code = verifyExitInput
		}
		return &exitError{code: code, msg: "verify: " + err.Error()}
	}
	if f.subject != "" {
		h, err := client.ParseSubjectDigest(f.subject)
		if err != nil {
			return usage(err.Error())
		}
		nm := f.subjectName
		if nm == "" {
			nm = "unknown"
		}
		targets[0].Subject = client.Subject{Name: nm, SHA256: h}
	} else if f.subjectName != "" {
		for i := range targets {
			targets[i].Subject.Name = f.subjectName
		}
	}

	if f.printClaims {
		return printClaims(stdout, targets)
	}

	conn, err := client.Dial(ctx, client.DialOptions{
		Address: f.server, TokenFile: f.tokenFile, CAFile: f.ca, CertFile: f.cert, KeyFile: f.key, ServerName: f.serverName,
	})
	if err != nil {
		return &exitError{code: verifyExitError, msg: "verify: " + err.Error()}
	}
	defer conn.Close()
	bc := vouchv1.NewBuilderServiceClient(conn)

	attestWanted := targets[0].Subject.SHA256 != ""
	rep := verifyJSON{OK: true}
	resps := make([]*vouchv1.VerifyPackagesResponse, len(targets))
	// With several subjects, first make sure all verify, so that a refusal
	// of one platform leaves no attestation issued for another.
	if len(targets) > 1 && attestWanted {
		dry := make([]*vouchv1.VerifyPackagesResponse, len(targets))
		for i, t := range targets {
			resp, err := client.Verify(ctx, bc, client.Request{Claims: t.Claims})
			dry[i] = resp
			if err != nil {
				return finishVerify(f, stdout, rep, targets, dry[:i+1], err)
			}
		}
	}
	for i, t := range targets {
		req := client.Request{Claims: t.Claims, Attest: attestWanted, Time: when}
		if attestWanted {
			req.Subjects = []client.Subject{t.Subject}
		}
		if len(t.Claims) >= progressThreshold {
			fmt.Fprintf(stderr, "verifying %d packages%s\n", len(t.Claims), platformSuffix(t))
		}
		resp, err := client.Verify(ctx, bc, req)
		resps[i] = resp
		if err != nil {
			return finishVerify(f, stdout, rep, targets, resps[:i+1], err)
		}
	}
	var atts []*vouchv1.Attestation
	for _, r := range resps {
		atts = append(atts, r.GetAttestations()...)
	}
	if f.out != "" {
		files, err := client.WriteBundles(f.out, atts)
		rep.Files = files
		if err != nil {
			return finishVerify(f, stdout, rep, targets, resps, err)
		}
	}
	if f.attach {
		ref, err := name.ParseReference(f.image)
		if err != nil {
			return finishVerify(f, stdout, rep, targets, resps, err)
		}
		bySubject := map[string][]ociattest.Attestation{}
		var order []string
		for _, a := range atts {
			if _, ok := bySubject[a.GetSubjectDigest()]; !ok {
				order = append(order, a.GetSubjectDigest())
			}
			bySubject[a.GetSubjectDigest()] = append(bySubject[a.GetSubjectDigest()], ociattest.Attestation{
				PredicateType: a.GetPredicateType(), Bundle: a.GetBundle(), Envelope: a.GetDsseEnvelope(),
			})
		}
		for _, s := range order {
			d := ref.Context().Digest(s)
			if err := ociattest.Attach(ctx, d, bySubject[s], ropts...); err != nil {
				return finishVerify(f, stdout, rep, targets, resps, err)
			}
			rep.Attached = append(rep.Attached, d.String())
		}
	}
	return finishVerify(f, stdout, rep, targets, resps, nil)
}

func platformSuffix(t client.Target) string {
	if t.Platform == "" {
		return ""
	}
	return " (" + t.Platform + ")"
}

// finishVerify prints the report and turns err into the exit code.
func finishVerify(f verifyFlags, w io.Writer, rep verifyJSON, targets []client.Target, resps []*vouchv1.VerifyPackagesResponse, err error) error {
	code := verifyExitOK
	if err != nil {
		rep.OK = false
		rep.Error = err.Error()
		code = verifyExitError
		if errors.Is(err, client.ErrRefused) || errors.Is(err, client.ErrResponse) {
			code = verifyExitRefused
		}
	}
	for i, resp := range resps {
		if resp == nil {
			continue
		}
		t := targets[i]
		tj := verifyTargetJSON{Platform: t.Platform, Verdict: resp.GetVerdict().String(), Counts: resp.GetCounts(), LedgerID: resp.GetLedgerId()}
		if t.Subject.SHA256 != "" {
			tj.Subject = t.Subject.Digest()
		}
		for _, r := range resp.GetResults() {
			b, _ := protojson.MarshalOptions{UseProtoNames: true}.Marshal(r)
			tj.Results = append(tj.Results, b)
		}
		rep.Targets = append(rep.Targets, tj)
	}
	if f.asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if e := enc.Encode(rep); e != nil {
			return e
		}
		if code == verifyExitOK {
			return nil
		}
		return &exitError{code: code}
	}
	for i, resp := range resps {
		if resp == nil {
			continue
		}
		t := targets[i]
		head := resp.GetVerdict().String()
		if t.Subject.SHA256 != "" {
			head += "  " + t.Subject.Digest()
		}
		fmt.Fprintf(w, "%s%s\n", head, platformSuffix(t))
		printResults(w, resp.GetResults())
	}
	for _, p := range rep.Files {
		fmt.Fprintf(w, "wrote %s\n", p)
	}
	for _, a := range rep.Attached {
		fmt.Fprintf(w, "attached to %s (%s tag and referrers)\n", a, ociattest.AttTag(mustDigest(a)).TagStr())
	}
	if code == verifyExitOK {
		return nil
	}
	msg := "verify: " + err.Error()
	if code == verifyExitRefused {
		msg = "verify: refused: nothing was written or attached (" + err.Error() + ")"
	}
	return &exitError{code: code, msg: msg}
}

func mustDigest(s string) name.Digest {
	d, err := name.NewDigest(s)
	if err != nil {
		return name.Digest{}
	}
	return d
}

// printResults writes the per-package table, with the evidence under each
// package that was not verified.
func printResults(w io.Writer, results []*vouchv1.PackageResult) {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "VERDICT\tNAME\tVERSION\tARCH\tCHECKSUM\tINDEX")
	for _, r := range results {
		ev := r.GetEvidence()
		idx := "-"
		if ev != nil && ev.GetIndexSha256() != "" {
			idx = ev.GetRepository() + "@" + short(ev.GetIndexSha256())
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", strings.TrimPrefix(r.GetVerdict().String(), "VERDICT_"), r.GetName(), r.GetVersion(), r.GetArch(), r.GetChecksum(), idx)
	}
	tw.Flush()
	for _, r := range results {
		if r.GetVerdict() == vouchv1.Verdict_VERDICT_VERIFIED {
			continue
		}
		fmt.Fprintf(w, "  %s-%s: %s\n", r.GetName(), r.GetVersion(), r.GetReason())
		if ev := r.GetEvidence(); ev != nil {
			if ev.GetIndexedChecksum() != "" {
				fmt.Fprintf(w, "    index lists %s\n", ev.GetIndexedChecksum())
			}
			if ev.GetIndexUrl() != "" {
				fmt.Fprintf(w, "    index %s sha256 %s signed by %s fetched %s\n", ev.GetIndexUrl(), ev.GetIndexSha256(),
					strings.Join(ev.GetSigningKeys(), ","), ev.GetIndexFetchedAt().AsTime().Format(time.RFC3339))
			}
			if ev.GetRevocationReason() != "" {
				fmt.Fprintf(w, "    revoked: %s\n", ev.GetRevocationReason())
			}
		}
	}
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/spf13/cobra"

	"github.com/vouchdev/vouch/attest"
	"github.com/vouchdev/vouch/client/imagefs"
	"github.com/vouchdev/vouch/deploy"
	"github.com/vouchdev/vouch/internal/config"
)

// Exit codes of vouch check.
const (
	checkExitOK       = 0 // a valid attestation; every installed package matches
	checkExitError    = 1 // usage, I/O or registry error
	checkExitNone     = 2 // no valid attestation (missing, untrusted key, bad signature, other subject or type)
	checkExitTooOld   = 3 // the newest valid attestation is older than --max-age
	checkExitPackages = 4 // installed packages differ from the attestation
)

type checkFlags struct {
	keys                          []string
	image, bundle, digest, rootfs string
	maxAge                        string
	asJSON                        bool
	timeout                       time.Duration
}

func newCheckCmd() *cobra.Command {
	var f checkFlags
	cmd := &cobra.Command{
		Use:   "check --key PUB [--key PUB2...] (--image REF | --bundle FILE --digest sha256:HEX) [--rootfs DIR] [--max-age D] [--json]",
		Short: "Check vouch's attestation for an image or a bundle at deploy time",
		Long: `check verifies vouch's SPDX attestation offline, with vouch's public key(s)
and no transparency log:

  --image REF        finds the attestations attached to the image digest, as
                     OCI referrers (Sigstore bundles) and in the
                     sha256-<hex>.att image (DSSE envelopes), and checks the
                     newest valid one; then every package in the image's
                     installed database must appear in it with the same
                     version and checksum
  --bundle FILE      a bundle (or DSSE envelope) file, for --digest sha256:HEX
  --rootfs DIR       compare this root filesystem's installed database
                     (instead of the image's, or at all with --bundle)
  --max-age D        refuse an attestation older than D (90m, 24h, 30d)

Exit codes: 0 the attestation is valid and every installed package matches;
1 usage, I/O or registry error; 2 no valid attestation (none attached,
untrusted key, bad signature, another subject or predicate type); 3 the
attestation is older than --max-age; 4 an installed package is missing from
the attestation or differs from it (each one is named).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runCheck(cmd.Context(), f, cmd.OutOrStdout())
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVar(&f.keys, "key", nil, "vouch public key PEM file (repeat for several)")
	fl.StringVar(&f.image, "image", "", "OCI image reference")
	fl.StringVar(&f.bundle, "bundle", "", "bundle or DSSE envelope file")
	fl.StringVar(&f.digest, "digest", "", "with --bundle: the subject digest sha256:HEX")
	fl.StringVar(&f.rootfs, "rootfs", "", "root filesystem whose installed database is compared")
	fl.StringVar(&f.maxAge, "max-age", "", "maximum attestation age (e.g. 24h, 30d)")
	fl.BoolVar(&f.asJSON, "json", false, "print JSON")
	fl.DurationVar(&f.timeout, "timeout", 2*time.Minute, "overall time limit")
	_ = cmd.MarkFlagRequired("key")
	return cmd
}

// checkJSON is vouch check's --json document. Field names are stable.
type checkJSON struct {
	OK     bool           `json:"ok"`
	Code   int            `json:"exit_code"`
	Error  string         `json:"error,omitempty"`
	Result *deploy.Result `json:"result,omitempty"`
}

func checkUsage(msg string) error { return &exitError{code: checkExitError, msg: "check: " + msg} }

func runCheck(ctx context.Context, f checkFlags, w io.Writer) error {
	if ctx == nil {
		ctx = context.Background()
	}
	switch {
	case (f.image == "") == (f.bundle == ""):
		return checkUsage("give exactly one of --image or --bundle")
	case f.bundle != "" && f.digest == "":
		return checkUsage("--bundle needs --digest sha256:HEX")
	case f.image != "" && f.digest != "":
		return checkUsage("--digest is for --bundle; an image's digest is resolved from the registry")
	}
	var pems [][]byte
	for _, k := range f.keys {
		b, err := os.ReadFile(k)
		if err != nil {
			return checkUsage(err.Error())
		}
		pems = append(pems, b)
	}
	keys, err := attest.NewKeySetPEM(pems...)
	if err != nil {
		return checkUsage("--key: " + err.Error())
	}
	o := deploy.Options{Keys: keys}
	if f.maxAge != "" {
		d, err := config.ParseDuration(f.maxAge)
		if err != nil {
			return checkUsage("--max-age: " + err.Error())
		}
		o.MaxAge = d
	}
	var installed []imagefs.Package
	if f.rootfs != "" {
		files, err := imagefs.ReadRootfs(f.rootfs)
		if err == nil {
			installed, err = files.Packages()
		}
		if err != nil {
			return checkUsage("--rootfs: " + err.Error())
		}
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()

	var res *deploy.Result
	if f.bundle != "" {
		data, err := os.ReadFile(f.bundle)
		if err != nil {
			return checkUsage(err.Error())
		}
		res, err = deploy.CheckBundle(data, f.digest, installed, o)
		return reportCheck(w, f, res, err)
	}
	res, err = deploy.CheckImage(ctx, f.image, deploy.ImageOptions{
		Options:   o,
		Installed: installed,
		Remote:    []remote.Option{remote.WithAuthFromKeychain(authn.DefaultKeychain)},
	})
	return reportCheck(w, f, res, err)
}

func checkCode(err error) int {
	switch {
	case err == nil:
		return checkExitOK
	case errors.Is(err, deploy.ErrPackages):
		return checkExitPackages
	case errors.Is(err, deploy.ErrTooOld):
		return checkExitTooOld
	case errors.Is(err, deploy.ErrNoAttestation):
		return checkExitNone
	default:
		return checkExitError
	}
}

func reportCheck(w io.Writer, f checkFlags, res *deploy.Result, err error) error {
	code := checkCode(err)
	if f.asJSON {
		doc := checkJSON{OK: err == nil, Code: code, Result: res}
		if err != nil {
			doc.Error = err.Error()
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if e := enc.Encode(doc); e != nil {
			return e
		}
		if code == checkExitOK {
			return nil
		}
		return &exitError{code: code}
	}
	if res != nil {
		var lay []string
		for _, l := range []string{"referrer", "att", "file"} {
			if n := res.Layouts[l]; n > 0 {
				lay = append(lay, fmt.Sprintf("%s x%d", l, n))
			}
		}
		fmt.Fprintf(w, "subject   %s\n", res.Subject)
		fmt.Fprintf(w, "signed by %s (%s)\n", res.KeyID, strings.Join(lay, ", "))
		fmt.Fprintf(w, "created   %s (%s ago)\n", res.Created.Format(time.RFC3339), time.Since(res.Created).Truncate(time.Second))
		fmt.Fprintf(w, "packages  %d attested", res.Packages)
		if res.Checked > 0 {
			fmt.Fprintf(w, ", %d installed checked, %d differ", res.Checked, len(res.Problems))
		}
		fmt.Fprintln(w)
		for _, p := range res.Problems {
			att := "nothing"
			if len(p.Attested) > 0 {
				att = strings.Join(p.Attested, "; ")
			}
			fmt.Fprintf(w, "  DIFFERS %s %s (%s): %s: installed %s, attested %s\n", p.Name, p.Version, p.Arch, p.Reason, p.Installed, att)
		}
		for _, r := range res.Rejected {
			fmt.Fprintf(w, "  ignored %s\n", r)
		}
	}
	if code == checkExitOK {
		fmt.Fprintln(w, "PASS")
		return nil
	}
	fmt.Fprintln(w, "FAIL")
	return &exitError{code: code, msg: "check: " + err.Error()}
}

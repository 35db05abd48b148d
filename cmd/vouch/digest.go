package main

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/vouchdev/vouch/apk"
)

// digestReport is the JSON document of `vouch digest`. Field names are
// stable.
type digestReport struct {
	OK       bool         `json:"ok"`
	Packages []digestJSON `json:"packages"`
}

type digestJSON struct {
	File     string `json:"file"`
	Name     string `json:"name,omitempty"`
	Version  string `json:"version,omitempty"`
	Arch     string `json:"arch,omitempty"`
	Checksum string `json:"checksum,omitempty"`
	// Datahash is the .PKGINFO value; DataSHA256 what the data part hashes
	// to; DatahashVerdict is "ok", "mismatch" or "missing".
	Datahash        string                 `json:"datahash,omitempty"`
	DataSHA256      string                 `json:"data_sha256,omitempty"`
	DatahashVerdict string                 `json:"datahash_verdict,omitempty"`
	SHA256          string                 `json:"sha256,omitempty"`
	Size            int64                  `json:"size,omitempty"`
	Signed          bool                   `json:"signed"`
	Signatures      []apk.PackageSignature `json:"signatures,omitempty"`
	Control         string                 `json:"control_range,omitempty"`
	Data            string                 `json:"data_range,omitempty"`
	OK              bool                   `json:"ok"`
	Error           string                 `json:"error,omitempty"`
}

func newDigestCmd() *cobra.Command {
	var asJSON bool
	var keysDir string
	cmd := &cobra.Command{
		Use:   "digest [--json] [--keys DIR] FILE...",
		Short: "Compute the digests vouch verifies for .apk files",
		Long: `For each .apk file print its name, version and arch (from .PKGINFO), its
checksum (Q1: SHA-1 of the control member, the value an index's C: must
equal), its datahash and whether the data part matches it. With --keys the
package signature is checked too. Exits 1 if any file fails.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := apk.PackageOptions{}
			if keysDir != "" {
				keys, err := apk.LoadKeyring(keysDir)
				if err != nil {
					return &exitError{code: 1, msg: err.Error()}
				}
				opts.Keys = keys
			}
			rep := digestReport{OK: true}
			for _, path := range args {
				d := digestFile(path, opts)
				rep.OK = rep.OK && d.OK
				rep.Packages = append(rep.Packages, d)
			}
			w := cmd.OutOrStdout()
			if asJSON {
				if err := writeJSON(w, rep); err != nil {
					return err
				}
			} else {
				tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
				fmt.Fprintln(tw, "FILE\tNAME\tVERSION\tARCH\tCHECKSUM\tDATAHASH\tVERDICT")
				for _, d := range rep.Packages {
					verdict := d.DatahashVerdict
					if d.Error != "" {
						verdict = "FAIL: " + d.Error
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.File, d.Name, d.Version, d.Arch, d.Checksum, d.Datahash, verdict)
				}
				tw.Flush()
			}
			if !rep.OK {
				n := 0
				for _, d := range rep.Packages {
					if !d.OK {
						n++
					}
				}
				msg := ""
				if !asJSON {
					msg = fmt.Sprintf("%d of %d packages failed", n, len(rep.Packages))
				}
				return &exitError{code: 1, msg: msg}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON document")
	cmd.Flags().StringVar(&keysDir, "keys", "", "also verify package signatures with the keys in this directory")
	return cmd
}

func digestFile(path string, opts apk.PackageOptions) digestJSON {
	d := digestJSON{File: path}
	f, err := os.Open(path)
	if err != nil {
		d.Error = err.Error()
		return d
	}
	defer f.Close()
	p, err := apk.ReadPackage(f, opts)
	if p != nil {
		d.Name, d.Version, d.Arch = p.Info.Name, p.Info.Version, p.Info.Arch
		d.Checksum = p.Checksum.String()
		d.Datahash = p.Info.DataHash
		d.DataSHA256 = hex.EncodeToString(p.DataSHA256[:])
		d.SHA256 = hex.EncodeToString(p.SHA256[:])
		d.Size = p.Size
		d.Signed = p.SignatureMember.Size > 0
		d.Signatures = p.Signatures
		d.Control, d.Data = p.Control.Range(), p.Data.Range()
		switch {
		case p.Info.DataHash == "":
			d.DatahashVerdict = "missing"
		case p.DataHashOK():
			d.DatahashVerdict = "ok"
		default:
			d.DatahashVerdict = "mismatch"
		}
	}
	if err != nil {
		d.Error = oneLine(err)
		return d
	}
	d.OK = true
	return d
}

// oneLine joins the messages of an errors.Join on one line.
func oneLine(err error) string {
	var j interface{ Unwrap() []error }
	if errors.As(err, &j) {
		s := ""
		for i, e := range j.Unwrap() {
			if i > 0 {
				s += "; "
			}
			s += e.Error()
		}
		return s
	}
	return err.Error()
}

package main

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/vouchdev/vouch/apk"
)

// indexReport is the JSON document of `vouch index verify` and `vouch
// index list`. Field names are stable.
type indexReport struct {
	File           string               `json:"file"`
	SHA256         string               `json:"sha256,omitempty"`
	Size           int64                `json:"size,omitempty"`
	Verified       bool                 `json:"verified"`
	Keys           []string             `json:"keys,omitempty"`
	Algorithm      string               `json:"algorithm,omitempty"`
	Description    string               `json:"description"`
	Signatures     []apk.IndexSignature `json:"signatures,omitempty"`
	EntryCount     int                  `json:"entry_count"`
	InvalidEntries []invalidJSON        `json:"invalid_entries,omitempty"`
	Entries        []entryJSON          `json:"entries,omitempty"`
	Error          string               `json:"error,omitempty"`
}

type invalidJSON struct {
	Line    int    `json:"line"`
	Name    string `json:"name,omitempty"`
	Version string `json:"version,omitempty"`
	Arch    string `json:"arch,omitempty"`
	Error   string `json:"error"`
}

type entryJSON struct {
	Name          string `json:"name"`
	Version       string `json:"version"`
	Arch          string `json:"arch"`
	Checksum      string `json:"checksum"`
	Size          int64  `json:"size"`
	InstalledSize int64  `json:"installed_size"`
	Origin        string `json:"origin,omitempty"`
	License       string `json:"license,omitempty"`
	BuildTime     int64  `json:"build_time,omitempty"`
	Commit        string `json:"commit,omitempty"`
	Depends       string `json:"depends,omitempty"`
	Provides      string `json:"provides,omitempty"`
}

func newIndexCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "index",
		Short: "Verify and inspect APKINDEX.tar.gz files locally",
	}
	cmd.AddCommand(newIndexVerifyCmd(), newIndexListCmd())
	return cmd
}

func newIndexVerifyCmd() *cobra.Command {
	var keysDir string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "verify --keys DIR [--json] FILE",
		Short: "Check an index's signature against trusted keys",
		Long: `Verify the signature of an APKINDEX.tar.gz with the public keys in DIR (as in
/etc/apk/keys: a key's file name must equal the name in the signature), then
parse it. Exits 0 and prints a summary when a signature by a key from DIR
verifies; exits 1 with a one-line reason otherwise.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if keysDir == "" {
				return &exitError{code: 2, msg: "index verify: --keys DIR is required"}
			}
			rep := indexReport{File: args[0]}
			x, err := loadIndexFile(args[0], keysDir, true)
			if err == nil {
				fillReport(&rep, x)
			}
			return finishIndex(cmd.OutOrStdout(), rep, err, asJSON, func(w io.Writer) {
				fmt.Fprintf(w, "OK %s: signed by %s (%s), %d entries", rep.File, joinKeys(rep.Keys), rep.Algorithm, rep.EntryCount)
				if len(rep.InvalidEntries) > 0 {
					fmt.Fprintf(w, ", %d invalid entries left out", len(rep.InvalidEntries))
				}
				fmt.Fprintf(w, ", description %q, sha256 %s\n", rep.Description, rep.SHA256)
			})
		},
	}
	cmd.Flags().StringVar(&keysDir, "keys", "", "directory (or file) of trusted RSA public keys, named as in the signature")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON document")
	return cmd
}

func newIndexListCmd() *cobra.Command {
	var keysDir string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list [--keys DIR] [--json] FILE",
		Short: "List an index's entries",
		Long: `List the entries of an APKINDEX.tar.gz: name, version, arch, checksum. With
--keys the signature is verified first (as in "index verify"); without it the
index is only parsed and the output says verified=false.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rep := indexReport{File: args[0]}
			x, err := loadIndexFile(args[0], keysDir, keysDir != "")
			if err == nil {
				fillReport(&rep, x)
				for e := range x.All() {
					rep.Entries = append(rep.Entries, entryJSON{
						Name: e.Name, Version: e.Version, Arch: e.Arch, Checksum: e.Checksum.String(),
						Size: e.Size, InstalledSize: e.InstalledSize, Origin: e.Origin, License: e.License,
						BuildTime: e.BuildTime, Commit: e.Commit, Depends: e.Depends, Provides: e.Provides,
					})
				}
			}
			return finishIndex(cmd.OutOrStdout(), rep, err, asJSON, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tVERSION\tARCH\tCHECKSUM")
				for _, e := range rep.Entries {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", e.Name, e.Version, e.Arch, e.Checksum)
				}
				tw.Flush()
				if !rep.Verified {
					fmt.Fprintf(cmd.ErrOrStderr(), "note: %s was not verified (no --keys)\n", rep.File)
				}
			})
		},
	}
	cmd.Flags().StringVar(&keysDir, "keys", "", "verify the signature with the keys in this directory first")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON document")
	return cmd
}

func loadIndexFile(path, keysDir string, verify bool) (*apk.Index, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if !verify {
		data, err := io.ReadAll(io.LimitReader(f, apk.DefaultMaxIndexSize+1))
		if err != nil {
			return nil, err
		}
		return apk.ParseIndexUnverifiedUnsafe(data, apk.IndexOptions{})
	}
	keys, err := apk.LoadKeyring(keysDir)
	if err != nil {
		return nil, err
	}
	return apk.ReadIndex(f, keys, apk.IndexOptions{})
}

func fillReport(rep *indexReport, x *apk.Index) {
	rep.SHA256 = hex.EncodeToString(x.SHA256[:])
	rep.Size = x.FileSize
	rep.Verified = x.Verified
	rep.Keys = x.VerifiedKeys()
	if x.Verified {
		rep.Algorithm = x.Algorithm().String()
	}
	rep.Description = x.Description
	rep.Signatures = x.Signatures
	rep.EntryCount = x.Len()
	for _, inv := range x.Invalid {
		rep.InvalidEntries = append(rep.InvalidEntries, invalidJSON{Line: inv.Line, Name: inv.Name, Version: inv.Version, Arch: inv.Arch, Error: inv.Err.Error()})
	}
}

// finishIndex prints the report (JSON, or text via printText) and turns
// err into exit code 1 with a one-line reason.
func finishIndex(w io.Writer, rep indexReport, err error, asJSON bool, printText func(io.Writer)) error {
	if err != nil {
		rep.Error = err.Error()
	}
	if asJSON {
		if jerr := writeJSON(w, rep); jerr != nil {
			return jerr
		}
		if err != nil {
			return &exitError{code: 1}
		}
		return nil
	}
	if err != nil {
		return &exitError{code: 1, msg: fmt.Sprintf("%s: %v", rep.File, err)}
	}
	printText(w)
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func joinKeys(keys []string) string {
	switch len(keys) {
	case 0:
		return "no key"
	case 1:
		return keys[0]
	}
	s := keys[0]
	for _, k := range keys[1:] {
		s += ", " + k
	}
	return s
}

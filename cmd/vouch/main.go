// Command vouch is vouch's CLI: verify packages with a vouch server, check attestations at deploy time, inspect indexes and packages, manage keys, and run the offline demo.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
)

// exitError carries a process exit code through cobra; its message (if any)
// has already been printed or is printed by main.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// newRootCmd builds the command tree. Each subcommand lives in its own file.
func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "vouch",
		Short: "Verify APK packages against signed indexes and check vouch attestations",
		Long: `vouch checks that the Alpine/Wolfi .apk packages in an image are exactly the
ones their repository signed, and turns that check into a signed attestation
that deploy-time policy can demand.

Builders:    vouch verify   (ask a vouch server to verify and attest)
Deploy time: vouch check    (verify an attestation for an image or bundle)
Local tools: vouch index, vouch digest, vouch keys
Try it:      vouch demo     (offline, in a temporary directory)`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	for _, c := range subcommands() {
		root.AddCommand(c)
	}
	return root
}

// run executes the CLI with args and returns the process exit code.
func run(args []string, stdout, stderr io.Writer) int {
	root := newRootCmd(stdout, stderr)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.msg != "" {
			fmt.Fprintln(stderr, "vouch:", ee.msg)
		}
		return ee.code
	}
	fmt.Fprintln(stderr, "vouch:", err)
	return 1
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

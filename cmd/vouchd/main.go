// Command vouchd is the vouch server: it keeps verified copies of the configured repositories' signed indexes and answers VerifyPackages over gRPC.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/vouchdev/vouch/internal/config"
	"github.com/vouchdev/vouch/internal/daemon"
)

// Exit codes.
const (
	exitOK     = 0
	exitFail   = 1
	exitConfig = 2
)

type options struct {
	configPath string
	check      bool
	listen     string
}

func newRootCmd(stdout, stderr io.Writer, code *int) *cobra.Command {
	var o options
	cmd := &cobra.Command{
		Use:   "vouchd --config FILE",
		Short: "Serve vouch's gRPC API",
		Long: `vouchd fetches, signature-checks and caches the configured repositories'
APKINDEX.tar.gz files and answers VerifyPackages: every package digest a
builder sends is checked against the signed index, and only when all of them
match does vouchd sign and record an attestation.

The configuration file is described in docs/CONFIG.md. Exit codes: 0 clean
shutdown, 1 runtime failure, 2 invalid configuration.`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(o.configPath)
			if err == nil && o.listen != "" {
				cfg.Listen = o.listen
				_, err = config.Revalidate(cfg)
			}
			if err != nil {
				fmt.Fprintf(stderr, "vouchd: invalid configuration:\n%v\n", err)
				*code = exitConfig
				return nil
			}
			if o.check {
				if err := daemon.Check(cfg); err != nil {
					fmt.Fprintf(stderr, "vouchd: %s: %v\n", o.configPath, err)
					*code = exitConfig
					return nil
				}
				fmt.Fprintf(stdout, "%s: configuration OK (%d repositories; keys, tokens and TLS files load)\n", o.configPath, len(cfg.Repositories))
				return nil
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			if err := serve(ctx, cfg, stdout, stderr); err != nil {
				fmt.Fprintf(stderr, "vouchd: %v\n", err)
				*code = exitFail
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&o.configPath, "config", "", "path of the YAML configuration file (required)")
	cmd.Flags().BoolVar(&o.check, "check", false, "validate the configuration, load its keys, tokens and TLS files, and exit (opens no store or connection)")
	cmd.Flags().StringVar(&o.listen, "listen", "", "override the configuration's gRPC listen address")
	_ = cmd.MarkFlagRequired("config")
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	return cmd
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	code := exitOK
	cmd := newRootCmd(stdout, stderr, &code)
	cmd.SetArgs(args)
	if err := cmd.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(stderr, "vouchd:", err)
		if errors.Is(err, config.ErrInvalid) {
			return exitConfig
		}
		return exitConfig // flag and usage errors
	}
	return code
}

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/vouchdev/vouch/internal/config"
	"github.com/vouchdev/vouch/internal/daemon"
)

// serve runs vouchd until ctx is done (SIGINT/SIGTERM): then it drains
// in-flight RPCs and stops. SIGHUP reloads the tokens file.
func serve(ctx context.Context, cfg *config.Config, _, _ io.Writer) error {
	d, err := daemon.Start(ctx, cfg, daemon.Options{Logger: daemon.NewLogger(cfg.Log, os.Stderr)})
	if err != nil {
		return err
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for range hup {
			_ = d.Reload()
		}
	}()
	return d.Wait(ctx)
}

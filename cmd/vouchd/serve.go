package main

import (
	"context"
	"errors"
	"io"

	"github.com/vouchdev/vouch/internal/config"
)

// serve runs vouchd until ctx is done.
func serve(ctx context.Context, cfg *config.Config, stdout, stderr io.Writer) error {
	_, _, _, _ = ctx, cfg, stdout, stderr
	return errors.New("the server is not built yet")
}

package harness

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/vouchdev/vouch/client"
)

// PollInterval is how often the Wait functions ask.
const PollInterval = 25 * time.Millisecond

// Dial connects to a vouchd on a loopback address (plaintext, anonymous).
// The connection is lazy and reconnects by itself after a restart on the
// same address, retrying every 10-50 ms (gRPC's default backoff starts at
// 1 s and would add up to a second to every measured start).
func Dial(_ context.Context, addr string) (*grpc.ClientConn, error) {
	if !client.IsLoopback(addr) {
		return nil, fmt.Errorf("dialing vouchd at %s: the bench programs only talk to loopback addresses", addr)
	}
	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 10 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 50 * time.Millisecond},
			MinConnectTimeout: time.Second,
		}))
	if err != nil {
		return nil, fmt.Errorf("dialing vouchd at %s: %w", addr, err)
	}
	return conn, nil
}

// Ready is when a started process became ready, measured from Proc.Started.
type Ready struct {
	// Healthz: /healthz on the metrics listener answered 200 (the index
	// cache has every snapshot loaded; checked on each request).
	Healthz time.Duration
	// Serving: the gRPC health check answered SERVING (vouchd updates
	// that status on a 1 s ticker, so it can lag Healthz by up to 1 s).
	Serving time.Duration
}

// WaitReady polls /healthz on metricsAddr and the gRPC health service on
// conn until both report ready, the process exits, ctx ends or timeout
// passes.
func (p *Proc) WaitReady(ctx context.Context, conn *grpc.ClientConn, metricsAddr string, timeout time.Duration) (Ready, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var r Ready
	hc := healthpb.NewHealthClient(conn)
	httpc := &http.Client{Timeout: time.Second}
	url := "http://" + metricsAddr + "/healthz"
	t := time.NewTicker(PollInterval)
	defer t.Stop()
	for {
		if r.Healthz == 0 && metricsAddr != "" {
			if resp, err := httpc.Get(url); err == nil {
				_ = resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					r.Healthz = time.Since(p.Started)
				}
			}
		}
		if r.Serving == 0 {
			cctx, ccancel := context.WithTimeout(ctx, time.Second)
			resp, err := hc.Check(cctx, &healthpb.HealthCheckRequest{})
			ccancel()
			if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
				r.Serving = time.Since(p.Started)
			}
		}
		if r.Serving != 0 && (r.Healthz != 0 || metricsAddr == "") {
			return r, nil
		}
		select {
		case <-p.done:
			return r, p.failure(errors.New("exited before it was ready"))
		case <-ctx.Done():
			return r, p.failure(fmt.Errorf("not ready within %s: %w", timeout, ctx.Err()))
		case <-t.C:
		}
	}
}

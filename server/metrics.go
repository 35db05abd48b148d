package server

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
)

// metrics are the server's Prometheus collectors (names vouch_*).
type metrics struct {
	rpcs         *prometheus.CounterVec
	latency      *prometheus.HistogramVec
	verdicts     *prometheus.CounterVec
	attestations prometheus.Counter
	ledgerWrite  prometheus.Histogram
	panics       prometheus.Counter
	inFlight     prometheus.Gauge
	shed         prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		rpcs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vouch_grpc_requests_total",
			Help: "gRPC requests by method and status code.",
		}, []string{"method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "vouch_grpc_request_duration_seconds",
			Help:    "gRPC request latency by method.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"method"}),
		verdicts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vouch_package_verdicts_total",
			Help: "Per-package verdicts of VerifyPackages.",
		}, []string{"verdict"}),
		attestations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vouch_attestations_issued_total",
			Help: "Attestation sets issued (each recorded in the ledger first).",
		}),
		ledgerWrite: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "vouch_ledger_write_duration_seconds",
			Help:    "Time to make a ledger entry durable.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .025, .05, .1, .25, 1},
		}),
		panics: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vouch_grpc_panics_total",
			Help: "Handler panics recovered into Internal errors.",
		}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vouch_verify_in_flight",
			Help: "VerifyPackages calls being worked on (at most limits.max_in_flight).",
		}),
		shed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vouch_verify_shed_total",
			Help: "VerifyPackages calls refused with ResourceExhausted because every slot stayed busy for limits.queue_timeout.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.rpcs, m.latency, m.verdicts, m.attestations, m.ledgerWrite, m.panics, m.inFlight, m.shed)
	}
	return m
}

func (m *metrics) observeRPC(fullMethod string, code codes.Code, d time.Duration) {
	m.rpcs.WithLabelValues(fullMethod, code.String()).Inc()
	m.latency.WithLabelValues(fullMethod).Observe(d.Seconds())
}

package index

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vouchdev/vouch/store"
)

// metrics holds the vouch_index_* collectors; a nil *metrics records
// nothing.
type metrics struct {
	fetches   *prometheus.CounterVec
	bytes     *prometheus.CounterVec
	refreshes *prometheus.CounterVec
	verify    *prometheus.HistogramVec
	check     *prometheus.HistogramVec
	events    *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, c *Cache) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	m := &metrics{
		fetches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vouch_index_fetches_total",
			Help: "Index download attempts by repository, arch and result (ok, not_modified, timeout, too_large, http_error, network_error, file_error, error).",
		}, []string{"repository", "arch", "result"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vouch_index_fetched_bytes_total",
			Help: "Bytes of index files downloaded.",
		}, []string{"repository", "arch"}),
		refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vouch_index_refreshes_total",
			Help: "Refreshes by repository, arch and outcome (updated, not_modified, loaded_from_store, failed, refused).",
		}, []string{"repository", "arch", "outcome"}),
		verify: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "vouch_index_verify_parse_seconds",
			Help:    "Time to verify the signature of an index and parse it (one apk.LoadIndex call), by result (ok, error).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12),
		}, []string{"repository", "arch", "result"}),
		check: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "vouch_index_check_seconds",
			Help:    "Time to compare a verified index with the previous one (diff, rollback and equivocation checks).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12),
		}, []string{"repository", "arch"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vouch_index_events_total",
			Help: "Events recorded by kind (rollback, equivocation, refresh_failure, equivocation_accepted).",
		}, []string{"repository", "arch", "kind"}),
	}
	for _, col := range []prometheus.Collector{m.fetches, m.bytes, m.refreshes, m.verify, m.check, m.events, &stateCollector{c: c}} {
		if err := reg.Register(col); err != nil {
			return nil, fmt.Errorf("registering index metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) fetch(s *stream, result string, n int) {
	if m == nil {
		return
	}
	m.fetches.WithLabelValues(s.repo.cfg.Name, s.arch, result).Inc()
	if n > 0 {
		m.bytes.WithLabelValues(s.repo.cfg.Name, s.arch).Add(float64(n))
	}
}

func (m *metrics) refreshed(s *stream, o RefreshOutcome) {
	if m == nil {
		return
	}
	m.refreshes.WithLabelValues(s.repo.cfg.Name, s.arch, o.String()).Inc()
}

func (m *metrics) verified(s *stream, d time.Duration, ok bool) {
	if m == nil {
		return
	}
	res := "ok"
	if !ok {
		res = "error"
	}
	m.verify.WithLabelValues(s.repo.cfg.Name, s.arch, res).Observe(d.Seconds())
}

func (m *metrics) checked(s *stream, d time.Duration) {
	if m == nil {
		return
	}
	m.check.WithLabelValues(s.repo.cfg.Name, s.arch).Observe(d.Seconds())
}

func (m *metrics) event(repo, arch string, kind store.EventKind) {
	if m == nil {
		return
	}
	m.events.WithLabelValues(repo, arch, string(kind)).Inc()
}

// stateCollector reports per-arch gauges computed at scrape time.
type stateCollector struct{ c *Cache }

var (
	ageDesc = prometheus.NewDesc("vouch_index_snapshot_age_seconds",
		"Seconds since the serving snapshot was last confirmed by a fetch or 304 (absent without a snapshot).",
		[]string{"repository", "arch"}, nil)
	entriesDesc = prometheus.NewDesc("vouch_index_entries",
		"Entries in the serving snapshot.", []string{"repository", "arch"}, nil)
	freshDesc = prometheus.NewDesc("vouch_index_fresh",
		"1 when the arch has a snapshot confirmed within max_age, else 0.", []string{"repository", "arch"}, nil)
	parsesDesc = prometheus.NewDesc("vouch_index_parses_total",
		"Index files verified and parsed by this process (304s and unchanged files are not parsed).", nil, nil)
)

func (sc *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- ageDesc
	ch <- entriesDesc
	ch <- freshDesc
	ch <- parsesDesc
}

func (sc *stateCollector) Collect(ch chan<- prometheus.Metric) {
	now := sc.c.now()
	for _, r := range sc.c.repos {
		for _, s := range r.order {
			fresh := 0.0
			if snap := s.cur.Load(); snap != nil {
				age := now.Sub(time.Unix(0, s.confirmed.Load())).Seconds()
				ch <- prometheus.MustNewConstMetric(ageDesc, prometheus.GaugeValue, age, r.cfg.Name, s.arch)
				ch <- prometheus.MustNewConstMetric(entriesDesc, prometheus.GaugeValue, float64(snap.entries), r.cfg.Name, s.arch)
				if s.fresh(now) {
					fresh = 1
				}
			}
			ch <- prometheus.MustNewConstMetric(freshDesc, prometheus.GaugeValue, fresh, r.cfg.Name, s.arch)
		}
	}
	ch <- prometheus.MustNewConstMetric(parsesDesc, prometheus.CounterValue, float64(sc.c.parses.Load()))
}

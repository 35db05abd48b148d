package main

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/vouchdev/vouch/bench/internal/fixture"
	"github.com/vouchdev/vouch/bench/internal/harness"
	vouchv1 "github.com/vouchdev/vouch/proto/vouch/v1"
)

// phaseStats are the verdict counts and rule violations of one phase.
type phaseStats struct {
	verified, stale, other, errors int
	wrongVerified, earlyStale      int
	firstWrong, firstEarly         string
	firstOther, firstError         string
}

// analysis judges the recorded results against what the upstream served.
//
// The rules use only the upstream's log of good answers (the published
// index delivered whole, or a 304), never vouchd's own view:
//   - a VERIFIED sent more than max_age (+ tolerance) after the end of the
//     last good answer that had started before the reply arrived is wrong:
//     vouchd cannot have confirmed the index later than that;
//   - an INDEX_STALE that arrived less than max_age (- tolerance) after a
//     good answer that ended before the request was sent is early: vouchd
//     had confirmed the index then;
//   - any other verdict is wrong (every claim is listed in every index
//     served), and RPC errors count against -max-errors.
type analysis struct {
	o       options
	goods   []fixture.Request // sorted by End
	results []result          // sorted by recv
	phases  []*phase
	stats   map[*phase]*phaseStats
}

func (a *analysis) phaseAt(t time.Time) *phase {
	for _, ph := range a.phases {
		if t.Before(ph.end) {
			return ph
		}
	}
	return a.phases[len(a.phases)-1]
}

// lastGoodEnd returns the latest End of a good answer for which ok is true.
func (a *analysis) lastGoodEnd(ok func(r fixture.Request) bool) (time.Time, bool) {
	var t time.Time
	found := false
	for _, g := range a.goods {
		if ok(g) && g.End.After(t) {
			t, found = g.End, true
		}
	}
	return t, found
}

func (a *analysis) check() {
	a.stats = map[*phase]*phaseStats{}
	for _, ph := range a.phases {
		a.stats[ph] = &phaseStats{}
	}
	tol, maxAge := a.o.tolerance, a.o.maxAge
	for _, r := range a.results {
		s := a.stats[a.phaseAt(r.recv)]
		switch {
		case r.code != "":
			s.errors++
			if s.firstError == "" {
				s.firstError = r.code
			}
		case r.verdict == vouchv1.Verdict_VERDICT_VERIFIED:
			s.verified++
			ge, ok := a.lastGoodEnd(func(g fixture.Request) bool { return !g.Start.After(r.recv) })
			if !ok || r.sent.Sub(ge) > maxAge+tol {
				s.wrongVerified++
				if s.firstWrong == "" {
					s.firstWrong = fmt.Sprintf("VERIFIED for a request sent %s after the last good answer of the upstream (max_age %s)", r.sent.Sub(ge).Round(time.Millisecond), maxAge)
				}
			}
		case r.verdict == vouchv1.Verdict_VERDICT_INDEX_STALE:
			s.stale++
			le, ok := a.lastGoodEnd(func(g fixture.Request) bool { return !g.End.After(r.sent.Add(-tol)) })
			if ok && r.recv.Add(tol).Before(le.Add(maxAge)) {
				s.earlyStale++
				if s.firstEarly == "" {
					s.firstEarly = fmt.Sprintf("INDEX_STALE %s after a good answer of the upstream (max_age %s)", r.recv.Sub(le).Round(time.Millisecond), maxAge)
				}
			}
		default:
			s.other++
			if s.firstOther == "" {
				s.firstOther = r.verdict.String()
			}
		}
	}
}

// faultRow is one line of the per-fault summary.
type faultRow struct {
	cells []string
	fails []string
}

// summary prints the per-fault table and every failed expectation, and
// returns the number of failures.
func (a *analysis) summary() int {
	var rows []faultRow
	failed := 0
	for i, ph := range a.phases {
		s := a.stats[ph]
		var fails []string
		fails = append(fails, ph.fails...)
		if s.wrongVerified > 0 {
			fails = append(fails, fmt.Sprintf("%d wrong VERIFIED, e.g. %s", s.wrongVerified, s.firstWrong))
		}
		if s.earlyStale > 0 {
			fails = append(fails, fmt.Sprintf("%d early INDEX_STALE, e.g. %s", s.earlyStale, s.firstEarly))
		}
		if s.other > 0 {
			fails = append(fails, fmt.Sprintf("%d responses with another verdict, e.g. %s", s.other, s.firstOther))
		}
		if s.errors > a.o.maxErrors {
			fails = append(fails, fmt.Sprintf("%d RPC errors (at most %d allowed), e.g. %s", s.errors, a.o.maxErrors, s.firstError))
		}
		if !ph.fault {
			if len(fails) > 0 {
				rows = append(rows, faultRow{cells: []string{ph.name, "", "", "", "", "", "", "", "", "", "", "FAIL"}, fails: fails})
			}
			continue
		}
		next := a.phases[i+1]
		row, more := a.faultCells(ph, next)
		fails = append(fails, more...)
		// Violations of the healthy phase after it are its recovery's.
		ns := a.stats[next]
		if ns.wrongVerified+ns.earlyStale+ns.other > 0 || ns.errors > a.o.maxErrors {
			fails = append(fails, fmt.Sprintf("in %q: %d wrong VERIFIED, %d early INDEX_STALE, %d other verdicts, %d RPC errors",
				next.name, ns.wrongVerified, ns.earlyStale, ns.other, ns.errors))
		}
		res := "ok"
		if len(fails) > 0 {
			res = "FAIL"
		}
		rows = append(rows, faultRow{cells: append(row, res), fails: fails})
	}
	fmt.Println("\n## Per fault")
	fmt.Println()
	fmt.Printf("max_age %s, refresh %s, tolerance %s, recovery allowed within %s of the upstream's return.\n\n", a.o.maxAge, a.o.refresh, a.o.tolerance, a.o.recover)
	fmt.Println("| fault | VERIFIED until | INDEX_STALE from | wrong VERIFIED | early STALE | other verdicts | RPC errors | upstream good again | VERIFIED again | vouchd fetch results | refresh outcomes / events | result |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|")
	for _, r := range rows {
		fmt.Println("| " + strings.Join(r.cells, " | ") + " |")
	}
	fmt.Println()
	fmt.Println("VERIFIED until / INDEX_STALE from: seconds after the end of the upstream's last good answer before the fault;")
	fmt.Println("upstream good again / VERIFIED again: seconds after the fault ended.")
	for _, ph := range a.phases {
		if len(ph.notes) > 0 {
			fmt.Printf("- %s: %s\n", ph.name, strings.Join(ph.notes, "; "))
		}
		if ph.status != nil && ph.fault && ph.status.GetLastError() != "" {
			fmt.Printf("- %s: vouchd's last error at the end of the fault: %s\n", ph.name, clip(ph.status.GetLastError(), 200))
		}
	}
	for _, r := range rows {
		for _, f := range r.fails {
			fmt.Printf("FAIL %s: %s\n", r.cells[0], f)
			failed++
		}
	}
	return failed
}

// faultCells computes the summary cells of a fault phase (without the
// result) and its failed expectations.
func (a *analysis) faultCells(ph, next *phase) ([]string, []string) {
	s := a.stats[ph]
	var fails []string
	last, ok := a.lastGoodEnd(func(g fixture.Request) bool { return g.Start.Before(ph.start) })
	if !ok {
		return []string{ph.name, "?", "?", "", "", "", "", "", "", "", ""}, []string{"no good answer of the upstream before the fault"}
	}
	var firstStale, lastVerified, lastStale *result
	for i := range a.results {
		r := &a.results[i]
		if r.recv.Before(ph.start) || !r.recv.Before(next.end) {
			continue
		}
		switch r.verdict {
		case vouchv1.Verdict_VERDICT_INDEX_STALE:
			if firstStale == nil {
				firstStale = r
			}
			lastStale = r
		case vouchv1.Verdict_VERDICT_VERIFIED:
			if firstStale == nil {
				lastVerified = r
			}
		}
	}
	since := func(t time.Time) string { return fmt.Sprintf("%.2f s", t.Sub(last).Seconds()) }
	until, from, back, again := "—", "never", "—", "—"
	if lastVerified != nil {
		until = since(lastVerified.recv)
	}
	if firstStale != nil {
		from = since(firstStale.recv)
		ph.notes = append(ph.notes, fmt.Sprintf("first INDEX_STALE reason: %q (the upstream's last good answer ended %s)",
			firstStale.reason, last.UTC().Format(time.RFC3339)))
	}
	if ph.end.Sub(last) > a.o.maxAge+2*a.o.tolerance && (firstStale == nil || firstStale.recv.After(ph.end.Add(a.o.tolerance))) {
		fails = append(fails, fmt.Sprintf("did not turn INDEX_STALE within the fault although the last good answer was %.1f s before its end", ph.end.Sub(last).Seconds()))
	}
	for _, g := range a.goods {
		if !g.Start.Before(ph.end) {
			back = fmt.Sprintf("%.2f s", g.End.Sub(ph.end).Seconds())
			break
		}
	}
	if lastStale != nil {
		var rec *result
		for i := range a.results {
			r := &a.results[i]
			if r.recv.After(lastStale.recv) && r.recv.Before(next.end) && r.verdict == vouchv1.Verdict_VERDICT_VERIFIED {
				rec = r
				break
			}
		}
		if rec == nil {
			again = "not recovered"
			fails = append(fails, fmt.Sprintf("still INDEX_STALE at the end of %q", next.name))
		} else {
			d := rec.recv.Sub(ph.end)
			again = fmt.Sprintf("%.2f s", d.Seconds())
			if d > a.o.recover {
				fails = append(fails, fmt.Sprintf("VERIFIED again only %.1f s after the upstream returned (allowed %s)", d.Seconds(), a.o.recover))
			}
		}
	}
	fetches := harness.Delta(ph.before.By("vouch_index_fetches_total", "result"), ph.after.By("vouch_index_fetches_total", "result"))
	outcomes := harness.Delta(ph.before.By("vouch_index_refreshes_total", "outcome"), ph.after.By("vouch_index_refreshes_total", "outcome"))
	events := harness.Delta(ph.before.By("vouch_index_events_total", "kind"), ph.after.By("vouch_index_events_total", "kind"))
	oe := counts(outcomes)
	if len(events) > 0 {
		oe += "; events " + counts(events)
	}
	return []string{ph.name, until, from, fmt.Sprint(s.wrongVerified), fmt.Sprint(s.earlyStale), fmt.Sprint(s.other),
		fmt.Sprint(s.errors), back, again, counts(fetches), oe}, fails
}

func counts(m map[string]float64) string {
	if len(m) == 0 {
		return "—"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %g", k, m[k])
	}
	return strings.Join(parts, ", ")
}

func clip(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// printTimeline prints one row per second of load.
func printTimeline(t0 time.Time, phases []*phase, results []result, samples []statusSample, reqs []fixture.Request) {
	end := phases[len(phases)-1].end
	n := int(math.Ceil(end.Sub(t0).Seconds()))
	type bucket struct {
		verified, stale, other, errors int
		lat                            []time.Duration
		upstream                       map[string]int
		fresh                          string
	}
	bs := make([]bucket, n+1)
	sec := func(t time.Time) int {
		i := int(t.Sub(t0) / time.Second)
		return max(0, min(i, n))
	}
	for _, r := range results {
		b := &bs[sec(r.recv)]
		b.lat = append(b.lat, r.recv.Sub(r.sent))
		switch {
		case r.code != "":
			b.errors++
		case r.verdict == vouchv1.Verdict_VERDICT_VERIFIED:
			b.verified++
		case r.verdict == vouchv1.Verdict_VERDICT_INDEX_STALE:
			b.stale++
		default:
			b.other++
		}
	}
	for _, q := range reqs {
		if q.Start.Before(t0) {
			continue
		}
		b := &bs[sec(q.Start)]
		if b.upstream == nil {
			b.upstream = map[string]int{}
		}
		code := fmt.Sprint(q.Status)
		if q.Status == 0 {
			code = "dropped"
		}
		b.upstream[code]++
	}
	for _, s := range samples {
		f := "fresh"
		switch s.freshness {
		case vouchv1.Freshness_FRESHNESS_STALE:
			f = "stale"
		case vouchv1.Freshness_FRESHNESS_NO_SNAPSHOT:
			f = "none"
		}
		bs[sec(s.at)].fresh = f
	}
	fmt.Println("\n## Timeline")
	fmt.Println()
	fmt.Println("Per second of load (by reply time). upstream: HTTP status of the index requests started in that second; vouchd: freshness in GetRepositoryStatus.")
	fmt.Println()
	fmt.Println("| t (s) | phase | VERIFIED | INDEX_STALE | other | RPC errors | p99 ms | upstream | vouchd |")
	fmt.Println("|---:|---|---:|---:|---:|---:|---:|---|---|")
	pi := 0
	for i := range n {
		at := t0.Add(time.Duration(i) * time.Second)
		for pi < len(phases)-1 && !at.Before(phases[pi].end) {
			pi++
		}
		b := bs[i]
		p99 := "—"
		if len(b.lat) > 0 {
			sort.Slice(b.lat, func(x, y int) bool { return b.lat[x] < b.lat[y] })
			k := int(math.Ceil(0.99*float64(len(b.lat)))) - 1
			p99 = fmt.Sprintf("%.1f", float64(b.lat[k])/float64(time.Millisecond))
		}
		up := make([]string, 0, len(b.upstream))
		for code, c := range b.upstream {
			if c == 1 {
				up = append(up, code)
			} else {
				up = append(up, fmt.Sprintf("%s×%d", code, c))
			}
		}
		sort.Strings(up)
		fmt.Printf("| %d | %s | %d | %d | %d | %d | %s | %s | %s |\n", i, phases[pi].name, b.verified, b.stale, b.other, b.errors, p99, strings.Join(up, " "), b.fresh)
	}
}

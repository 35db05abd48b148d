package server

import (
	"context"
	"crypto/sha1" //nolint:gosec // the APK v2 identity is SHA-1 of the control member (APK-FORMAT §2).
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vouchdev/vouch/apk"
	"github.com/vouchdev/vouch/attest"
	"github.com/vouchdev/vouch/index"
	vouchv1 "github.com/vouchdev/vouch/proto/vouch/v1"
	"github.com/vouchdev/vouch/store"
)

// decision is the verdict for one claim with what the attestation needs.
type decision struct {
	verdict  vouchv1.Verdict
	reason   string
	evidence *vouchv1.Evidence
	repo     string
	lookup   index.Lookup
	datahash string // verified datahash, "" when unknown
}

// VerifyPackages implements BuilderService.VerifyPackages. See the proto for
// the contract. Order of checks per claim (fail closed at each step):
// repository, control member (when sent), index freshness, index listing
// (current, then history window), checksum, revocation, datahash.
func (s *Server) VerifyPackages(ctx context.Context, req *vouchv1.VerifyPackagesRequest) (*vouchv1.VerifyPackagesResponse, error) {
	now := s.cfg.Clock()
	claims, err := validateVerify(req, s.cfg.Limits, now)
	if err != nil {
		return nil, err
	}
	release, err := s.acquireSlot(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	revoked, err := s.revs.get(ctx, s.st, now)
	if err != nil {
		return nil, err
	}
	resp := &vouchv1.VerifyPackagesResponse{
		Verdict: vouchv1.Verdict_VERDICT_VERIFIED,
		Results: make([]*vouchv1.PackageResult, len(claims)),
		Counts:  map[string]uint32{},
	}
	decisions := make([]decision, len(claims))
	var res resolved
	for i := range claims {
		d := s.decide(ctx, &claims[i], revoked, &res)
		decisions[i] = d
		c := &claims[i]
		resp.Results[i] = &vouchv1.PackageResult{
			Index:    uint32(i),
			Name:     c.GetName(),
			Version:  c.GetVersion(),
			Arch:     c.GetArch(),
			Checksum: c.GetChecksum(),
			Verdict:  d.verdict,
			Reason:   d.reason,
			Evidence: d.evidence,
		}
		resp.Counts[d.verdict.String()]++
		if d.verdict != vouchv1.Verdict_VERDICT_VERIFIED && resp.Verdict == vouchv1.Verdict_VERDICT_VERIFIED {
			resp.Verdict = d.verdict
		}
	}
	for v, n := range resp.Counts {
		s.metrics.verdicts.WithLabelValues(v).Add(float64(n))
	}
	at := now.UTC().Truncate(time.Second)
	if t := req.GetOptions().GetTime(); t != nil {
		at = t.AsTime().UTC().Truncate(time.Second)
	}
	resp.VerifiedAt = timestamppb.New(at)
	if resp.Verdict != vouchv1.Verdict_VERDICT_VERIFIED || !req.GetOptions().GetAttest() {
		return resp, nil
	}
	atts, id, err := s.issue(ctx, req.GetSubjects(), claims, decisions, at)
	if err != nil {
		return nil, err
	}
	resp.Attestations, resp.LedgerId = atts, id
	return resp, nil
}

// acquireSlot takes one of Limits.MaxInFlight slots, waiting at most
// Limits.QueueTimeout (and never past ctx). Over the limit the call fails
// with ErrOverLimit (ResourceExhausted): the caller should back off and
// retry.
func (s *Server) acquireSlot(ctx context.Context) (func(), error) {
	release := func() {
		<-s.slots
		s.metrics.inFlight.Dec()
	}
	select {
	case s.slots <- struct{}{}:
		s.metrics.inFlight.Inc()
		return release, nil
	default:
	}
	t := time.NewTimer(s.cfg.Limits.QueueTimeout)
	defer t.Stop()
	select {
	case s.slots <- struct{}{}:
		s.metrics.inFlight.Inc()
		return release, nil
	case <-t.C:
		s.metrics.shed.Inc()
		return nil, fmt.Errorf("%w: vouchd is busy: %d VerifyPackages calls in flight and no slot freed within %s; retry with backoff",
			ErrOverLimit, s.cfg.Limits.MaxInFlight, s.cfg.Limits.QueueTimeout)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// resolved remembers the last repository URL resolved within one request:
// a request's claims mostly share one.
type resolved struct {
	url, repo string
	ok, set   bool
}

func (r *resolved) resolve(idx Indexes, url string) (string, bool) {
	if !r.set || r.url != url {
		r.repo, r.ok = idx.Resolve(url)
		r.url, r.set = url, true
	}
	return r.repo, r.ok
}

// decide computes the verdict for one claim.
func (s *Server) decide(ctx context.Context, c *claim, revoked map[string]store.Revocation, res *resolved) decision {
	repo, ok := res.resolve(s.idx, c.GetRepository())
	if !ok {
		return decision{verdict: vouchv1.Verdict_VERDICT_UNKNOWN_REPOSITORY,
			reason: fmt.Sprintf("%s is not a configured repository or mirror", clip(c.GetRepository()))}
	}
	d := decision{repo: repo}
	// With a raw control member, vouch derives the identity itself.
	if ctl := c.GetControl(); len(ctl) > 0 {
		if v, reason, datahash := checkControl(c, ctl); v != vouchv1.Verdict_VERDICT_VERIFIED {
			d.verdict, d.reason = v, reason
			d.evidence = &vouchv1.Evidence{Repository: repo, Arch: c.GetArch()}
			return d
		} else {
			d.datahash = datahash
		}
	}
	l := s.idx.Lookup(ctx, repo, c.GetArch(), c.GetName(), c.GetVersion())
	d.lookup = l
	d.evidence = evidenceOf(repo, s.repos[repo].URL, c.GetArch(), l)
	switch l.Outcome {
	case index.UnknownRepository:
		d.verdict = vouchv1.Verdict_VERDICT_UNKNOWN_REPOSITORY
		d.reason = fmt.Sprintf("architecture %s is not configured for repository %s", c.GetArch(), repo)
		return d
	case index.NoSnapshot:
		d.verdict = vouchv1.Verdict_VERDICT_INDEX_STALE
		d.reason = fmt.Sprintf("no validly signed index of %s/%s has been loaded yet", repo, c.GetArch())
		return d
	case index.Stale:
		d.verdict = vouchv1.Verdict_VERDICT_INDEX_STALE
		d.reason = fmt.Sprintf("the signed index of %s/%s is older than its max_age (last confirmed fresh %s)", repo, c.GetArch(), l.Snapshot.ConfirmedAt.UTC().Format(time.RFC3339))
		return d
	case index.NotFound:
		d.verdict = vouchv1.Verdict_VERDICT_NOT_IN_INDEX
		d.reason = fmt.Sprintf("%s %s is not in the signed index of %s/%s", c.GetName(), c.GetVersion(), repo, c.GetArch())
		return d
	case index.Current, index.History:
	default:
		d.verdict = vouchv1.Verdict_VERDICT_UNSPECIFIED
		d.reason = "internal: unknown index outcome"
		return d
	}
	if !l.Checksum.Equal(c.sum) {
		d.verdict = vouchv1.Verdict_VERDICT_CHECKSUM_MISMATCH
		d.evidence.IndexedChecksum = l.Checksum.String()
		d.reason = fmt.Sprintf("the signed index lists %s %s with checksum %s, not %s: this is not the package the repository signed",
			c.GetName(), c.GetVersion(), l.Checksum.String(), c.sum.String())
		return d
	}
	if l.Outcome == index.History && l.Expired {
		d.verdict = vouchv1.Verdict_VERDICT_NOT_IN_INDEX
		d.reason = fmt.Sprintf("%s %s left the signed index at %s, beyond the repository's history window",
			c.GetName(), c.GetVersion(), l.LeftAt.UTC().Format(time.RFC3339))
		return d
	}
	if r, ok := revoked[c.sum.Key()]; ok {
		d.verdict = vouchv1.Verdict_VERDICT_REVOKED
		d.evidence.RevocationReason = r.Reason
		d.reason = fmt.Sprintf("checksum %s was revoked by %s at %s: %s", c.sum.String(), r.By, r.At.UTC().Format(time.RFC3339), r.Reason)
		return d
	}
	// A claimed datahash must agree with the one the control member binds.
	if d.datahash == "" {
		if known, ok := s.datah.get(c.sum); ok {
			d.datahash = known
		}
	} else {
		s.datah.put(c.sum, d.datahash)
	}
	if claimed := c.GetDatahash(); claimed != "" && d.datahash != "" && claimed != d.datahash {
		d.verdict = vouchv1.Verdict_VERDICT_DATAHASH_MISMATCH
		d.evidence.Datahash = d.datahash
		d.reason = fmt.Sprintf("claimed datahash %s differs from %s, which the signed control member binds", claimed, d.datahash)
		return d
	}
	d.evidence.Datahash = d.datahash
	d.verdict = vouchv1.Verdict_VERDICT_VERIFIED
	if l.Outcome == index.History {
		d.reason = fmt.Sprintf("listed in a signed index of %s/%s until %s (within the history window)", repo, c.GetArch(), l.LeftAt.UTC().Format(time.RFC3339))
	} else {
		d.reason = "listed in the current signed index of " + repo + "/" + c.GetArch() // the common case: no Sprintf
	}
	return d
}

// checkControl verifies a raw control member against the claim: SHA-1 equals
// the claimed checksum, .PKGINFO names the same package, version and a
// compatible arch, carries a datahash, and that datahash agrees with a
// claimed one. It returns VERIFIED and the datahash, or the refusal.
func checkControl(c *claim, ctl []byte) (vouchv1.Verdict, string, string) {
	if c.sum.Alg != apk.ChecksumSHA1 {
		return vouchv1.Verdict_VERDICT_CONTROL_MISMATCH, "a control member can only be checked against a SHA-1 (Q1) identity", ""
	}
	h := sha1.Sum(ctl) //nolint:gosec // APK v2 identity.
	if !apk.SHA1Checksum(h).Equal(c.sum) {
		return vouchv1.Verdict_VERDICT_CONTROL_MISMATCH,
			fmt.Sprintf("SHA-1 of the control member is %s, not the claimed %s", apk.SHA1Checksum(h).String(), c.sum.String()), ""
	}
	_, info, err := apk.ParseControl(ctl)
	if err != nil {
		return vouchv1.Verdict_VERDICT_CONTROL_MISMATCH, "control member: " + err.Error(), ""
	}
	switch {
	case info.Name != c.GetName():
		return vouchv1.Verdict_VERDICT_CONTROL_MISMATCH, fmt.Sprintf(".PKGINFO pkgname is %q, claim says %q", info.Name, c.GetName()), ""
	case info.Version != c.GetVersion():
		return vouchv1.Verdict_VERDICT_CONTROL_MISMATCH, fmt.Sprintf(".PKGINFO pkgver is %q, claim says %q", info.Version, c.GetVersion()), ""
	case info.Arch != c.GetArch() && info.Arch != "noarch":
		return vouchv1.Verdict_VERDICT_CONTROL_MISMATCH, fmt.Sprintf(".PKGINFO arch is %q, claim says %q", info.Arch, c.GetArch()), ""
	case info.DataHash == "":
		return vouchv1.Verdict_VERDICT_CONTROL_MISMATCH, ".PKGINFO has no datahash (legacy package): refused", ""
	}
	if claimed := c.GetDatahash(); claimed != "" && claimed != info.DataHash {
		return vouchv1.Verdict_VERDICT_DATAHASH_MISMATCH,
			fmt.Sprintf("claimed datahash %s differs from the control member's %s", claimed, info.DataHash), ""
	}
	return vouchv1.Verdict_VERDICT_VERIFIED, "", info.DataHash
}

func evidenceOf(repo, repoURL, arch string, l index.Lookup) *vouchv1.Evidence {
	e := &vouchv1.Evidence{
		Repository:    repo,
		RepositoryUrl: repoURL,
		Arch:          arch,
		IndexUrl:      l.Snapshot.IndexURL,
		IndexSha256:   l.Snapshot.SHA256,
		SigningKeys:   l.Snapshot.Keys,
	}
	if !l.Snapshot.FetchedAt.IsZero() {
		e.IndexFetchedAt = timestamppb.New(l.Snapshot.FetchedAt)
	}
	switch l.Outcome {
	case index.Current:
		e.Match = vouchv1.IndexMatch_INDEX_MATCH_CURRENT
	case index.History:
		e.Match = vouchv1.IndexMatch_INDEX_MATCH_HISTORY
		if !l.LeftAt.IsZero() {
			e.LeftIndexAt = timestamppb.New(l.LeftAt)
		}
	}
	return e
}

// issue signs the attestations for every subject, records them in the
// ledger, and returns them only once the ledger entry is durable.
func (s *Server) issue(ctx context.Context, subjects []*vouchv1.Subject, claims []claim, ds []decision, at time.Time) ([]*vouchv1.Attestation, string, error) {
	caller, _ := CallerFrom(ctx)
	pkgs := make([]attest.Package, len(claims))
	ledgerPkgs := make([]store.AttestedPackage, len(claims))
	for i := range claims {
		c, d := &claims[i], &ds[i]
		repo := s.repos[d.repo]
		m := attest.MatchCurrent
		if d.lookup.Outcome == index.History {
			m = attest.MatchHistory
		}
		license, origin := d.lookup.LicenseOrigin()
		pkgs[i] = attest.Package{
			Name:     c.GetName(),
			Version:  c.GetVersion(),
			Arch:     c.GetArch(),
			Checksum: c.sum,
			DataHash: d.datahash,
			License:  license,
			Origin:   origin,
			Repository: attest.Repository{
				Name: repo.Name, URL: repo.URL, Supplier: repo.Supplier, Distro: repo.Distro,
			},
			Evidence: attest.Evidence{
				IndexURL:    d.lookup.Snapshot.IndexURL,
				IndexSHA256: d.lookup.Snapshot.SHA256,
				SigningKey:  strings.Join(d.lookup.Snapshot.Keys, ","),
				FetchedAt:   d.lookup.Snapshot.FetchedAt,
				Match:       m,
			},
		}
		ledgerPkgs[i] = store.AttestedPackage{
			Name: c.GetName(), Version: c.GetVersion(), Arch: c.GetArch(), Repository: d.repo,
			Checksum: c.sum, DataHash: d.datahash, Verdict: "VERIFIED", IndexSHA256: d.lookup.Snapshot.SHA256,
		}
	}
	var out []*vouchv1.Attestation
	entry := store.Attestation{Time: at, Builder: caller.Identity, Verdict: "VERIFIED", Packages: ledgerPkgs}
	if entry.Builder == "" {
		entry.Builder = AnonymousIdentity
	}
	// Predicates are stored subject by subject, in the order Issue returns
	// them; ledgerAttestations relies on that order to name each subject.
	for _, sub := range subjects {
		entry.Subjects = append(entry.Subjects, store.Subject{Name: sub.GetName(), Digest: sub.GetDigest()})
		in := attest.Input{
			Subject:  attest.Subject{Name: sub.GetName(), Digest: sub.GetDigest()},
			Packages: pkgs,
			Verifier: s.cfg.Verifier,
			Policy:   s.cfg.Policy,
			Time:     at,
		}
		atts, err := attest.Issue(ctx, s.signer, in)
		if err != nil {
			return nil, "", fmt.Errorf("issuing attestations: %w", err)
		}
		for _, a := range atts {
			sum := sha256.Sum256(a.Statement)
			hexSum := hex.EncodeToString(sum[:])
			out = append(out, &vouchv1.Attestation{
				SubjectDigest:   "sha256:" + sub.GetDigest()["sha256"],
				PredicateType:   a.PredicateType,
				Bundle:          a.Bundle,
				DsseEnvelope:    a.Envelope,
				StatementSha256: hexSum,
			})
			entry.Predicates = append(entry.Predicates, store.Predicate{
				Type: a.PredicateType, Digest: map[string]string{"sha256": hexSum}, Bundle: a.Bundle,
			})
		}
	}
	// A caller that has gone (deadline passed, canceled) would never
	// receive the attestations: do not record what nobody holds.
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	start := time.Now()
	id, err := s.st.AppendAttestation(ctx, entry)
	s.metrics.ledgerWrite.Observe(time.Since(start).Seconds())
	if err != nil {
		// Nothing leaves the server without a durable ledger entry.
		return nil, "", fmt.Errorf("recording the ledger entry: %w", err)
	}
	s.metrics.attestations.Inc()
	return out, id, nil
}

package server

import (
	"context"
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

// GetRepositoryStatus implements ReaderService.GetRepositoryStatus.
func (s *Server) GetRepositoryStatus(ctx context.Context, req *vouchv1.GetRepositoryStatusRequest) (*vouchv1.GetRepositoryStatusResponse, error) {
	if r := req.GetRepository(); r != "" {
		if _, ok := s.repos[r]; !ok {
			return nil, fieldErr("repository", r, "the name of a configured repository")
		}
	}
	limit := int(req.GetEventLimit())
	switch {
	case limit == 0:
		limit = 10
	case limit > 100:
		return nil, fieldErr("event_limit", fmt.Sprint(limit), "at most 100")
	}
	resp := &vouchv1.GetRepositoryStatusResponse{}
	byRepo := map[string]*vouchv1.RepositoryStatus{}
	for _, a := range s.idx.Status(ctx, req.GetRepository()) {
		out := byRepo[a.Repository]
		if out == nil {
			rc, _ := s.idx.Repository(a.Repository)
			out = &vouchv1.RepositoryStatus{Name: a.Repository, Url: a.URL, Mirrors: rc.Mirrors}
			if rc.Keys != nil {
				out.Keys = rc.Keys.Names()
			}
			byRepo[a.Repository] = out
			resp.Repositories = append(resp.Repositories, out)
		}
		as := &vouchv1.ArchStatus{
			Arch:        a.Arch,
			IndexUrl:    a.Snapshot.IndexURL,
			IndexSha256: a.Snapshot.SHA256,
			EntryCount:  uint64(a.Entries),
			SigningKeys: a.Snapshot.Keys,
			Description: a.Description,
			FetchedAt:   ts(a.Snapshot.FetchedAt),
			LastSuccess: ts(a.LastSuccess),
			LastAttempt: ts(a.LastAttempt),
			StaleAfter:  ts(a.StaleAfter),
			Freshness:   freshnessOf(a.Freshness),
		}
		if a.LastError != nil {
			as.LastError = a.LastError.Error()
		}
		events, _, err := s.st.ListEvents(ctx, store.EventQuery{Repository: a.Repository, Arch: a.Arch, PageSize: limit})
		if err != nil {
			return nil, fmt.Errorf("listing events: %w", err)
		}
		for _, e := range events {
			as.RecentEvents = append(as.RecentEvents, eventToProto(e))
		}
		out.Architectures = append(out.Architectures, as)
	}
	return resp, nil
}

func freshnessOf(f index.Freshness) vouchv1.Freshness {
	switch f {
	case index.Fresh:
		return vouchv1.Freshness_FRESHNESS_FRESH
	case index.StaleSnapshot:
		return vouchv1.Freshness_FRESHNESS_STALE
	default:
		return vouchv1.Freshness_FRESHNESS_NO_SNAPSHOT
	}
}

func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func eventToProto(e store.Event) *vouchv1.RepositoryEvent {
	out := &vouchv1.RepositoryEvent{
		Id:             fmt.Sprint(e.ID),
		Repository:     e.Repository,
		Arch:           e.Arch,
		Time:           ts(e.Time),
		Detail:         e.Detail,
		PackageName:    e.Name,
		PackageVersion: e.Version,
		IndexSha256:    e.SHA256,
	}
	if !e.Checksum.IsZero() {
		out.PreviousChecksum = e.Checksum.String()
	}
	if !e.OtherChecksum.IsZero() {
		out.NewChecksum = e.OtherChecksum.String()
	}
	switch e.Kind {
	case store.EventRollback:
		out.Kind = vouchv1.EventKind_EVENT_KIND_ROLLBACK
	case store.EventEquivocation:
		out.Kind = vouchv1.EventKind_EVENT_KIND_EQUIVOCATION
	case store.EventRefreshFailure:
		out.Kind = vouchv1.EventKind_EVENT_KIND_REFRESH_FAILED
	case store.EventEquivocationAccepted:
		out.Kind = vouchv1.EventKind_EVENT_KIND_EQUIVOCATION_ACCEPTED
	}
	return out
}

// LookupPackage implements ReaderService.LookupPackage from the store's
// record of every entry seen in a signed index.
func (s *Server) LookupPackage(ctx context.Context, req *vouchv1.LookupPackageRequest) (*vouchv1.LookupPackageResponse, error) {
	if r := req.GetRepository(); r != "" {
		if _, ok := s.repos[r]; !ok {
			return nil, fieldErr("repository", r, "the name of a configured repository")
		}
	}
	var recs []store.EntryRecord
	var err error
	switch q := req.GetQuery().(type) {
	case *vouchv1.LookupPackageRequest_Checksum:
		sum, perr := apk.ParseChecksum(q.Checksum)
		if perr != nil {
			return nil, fieldErr("checksum", q.Checksum, "an APK identity checksum (Q1…)")
		}
		recs, err = s.st.EntriesByChecksum(ctx, sum)
	case *vouchv1.LookupPackageRequest_Package:
		p := q.Package
		if err := checkToken(p.GetName(), maxNameLen); err != nil {
			return nil, err.at("package.name")
		}
		if p.GetVersion() != "" && p.GetArch() != "" {
			recs, err = s.st.LookupEntry(ctx, p.GetName(), p.GetVersion(), p.GetArch())
		} else {
			recs, err = s.lookupByName(ctx, req.GetRepository(), p)
		}
	default:
		return nil, fieldErr("query", "", "set package or checksum")
	}
	if err != nil {
		return nil, fmt.Errorf("looking up packages: %w", err)
	}
	revoked, err := s.revs.get(ctx, s.st, s.cfg.Clock())
	if err != nil {
		return nil, err
	}
	resp := &vouchv1.LookupPackageResponse{}
	for _, r := range recs {
		if req.GetRepository() != "" && r.Repository != req.GetRepository() {
			continue
		}
		if !r.Current() && !req.GetIncludeHistory() {
			continue
		}
		ip := &vouchv1.IndexedPackage{
			Repository:     r.Repository,
			Arch:           r.Arch,
			Name:           r.Name,
			Version:        r.Version,
			Checksum:       r.Checksum.String(),
			InCurrentIndex: r.Current(),
			FirstSeen:      ts(r.FirstSeen),
			LastSeen:       ts(r.LastSeen),
			LeftAt:         ts(r.LeftAt),
		}
		_, ip.Revoked = revoked[r.Checksum.Key()]
		if r.Current() {
			if l := s.idx.Lookup(ctx, r.Repository, r.Arch, r.Name, r.Version); l.Outcome == index.Current {
				ip.License, ip.Origin = l.LicenseOrigin()
			}
		}
		resp.Packages = append(resp.Packages, ip)
	}
	return resp, nil
}

// lookupByName scans the entries seen for name in every configured (or the
// selected) repository and arch.
func (s *Server) lookupByName(ctx context.Context, repo string, p *vouchv1.PackageQuery) ([]store.EntryRecord, error) {
	var out []store.EntryRecord
	for _, a := range s.idx.Status(ctx, repo) {
		{
			if p.GetArch() != "" && a.Arch != p.GetArch() {
				continue
			}
			recs, err := s.st.SeenEntries(ctx, a.Repository, a.Arch)
			if err != nil {
				return nil, err
			}
			for _, r := range recs {
				if r.Name == p.GetName() && (p.GetVersion() == "" || r.Version == p.GetVersion()) {
					out = append(out, r)
				}
			}
		}
	}
	return out, nil
}

// ListLedgerEntries implements ReaderService.ListLedgerEntries.
func (s *Server) ListLedgerEntries(ctx context.Context, req *vouchv1.ListLedgerEntriesRequest) (*vouchv1.ListLedgerEntriesResponse, error) {
	q := store.AttestationQuery{
		PackageName:    req.GetPackageName(),
		PackageVersion: req.GetPackageVersion(),
		PageToken:      req.GetPageToken(),
		PageSize:       int(req.GetPageSize()),
	}
	if d := req.GetSubjectDigest(); d != "" {
		hexd, ok := strings.CutPrefix(d, "sha256:")
		if !ok || !isSHA256Hex(hexd) {
			return nil, fieldErr("subject_digest", d, "sha256:<64 lower-case hex>")
		}
		q.SubjectDigest = d
	}
	if q.PackageVersion != "" && q.PackageName == "" {
		return nil, fieldErr("package_version", q.PackageVersion, "only together with package_name")
	}
	if c := req.GetChecksum(); c != "" {
		sum, err := apk.ParseChecksum(c)
		if err != nil {
			return nil, fieldErr("checksum", c, "an APK identity checksum (Q1…)")
		}
		q.Checksum = sum
	}
	if q.PageSize > 1000 {
		return nil, fieldErr("page_size", fmt.Sprint(q.PageSize), "at most 1000")
	}
	if q.PageSize == 0 {
		q.PageSize = 50
	}
	if t := req.GetSince(); t != nil {
		q.Since = t.AsTime()
	}
	if t := req.GetUntil(); t != nil {
		q.Until = t.AsTime()
	}
	page, next, err := s.st.ListAttestations(ctx, q)
	if err != nil {
		if isInvalid(err) {
			return nil, fieldErr("page_token", req.GetPageToken(), "a token from a previous response with the same filters")
		}
		return nil, fmt.Errorf("listing the ledger: %w", err)
	}
	revoked, err := s.revs.get(ctx, s.st, s.cfg.Clock())
	if err != nil {
		return nil, err
	}
	resp := &vouchv1.ListLedgerEntriesResponse{NextPageToken: next}
	for _, a := range page {
		resp.Entries = append(resp.Entries, ledgerToProto(a, false, revoked))
	}
	return resp, nil
}

// GetLedgerEntry implements ReaderService.GetLedgerEntry.
func (s *Server) GetLedgerEntry(ctx context.Context, req *vouchv1.GetLedgerEntryRequest) (*vouchv1.GetLedgerEntryResponse, error) {
	if err := checkToken(req.GetId(), 64); err != nil {
		return nil, err.at("id")
	}
	a, err := s.st.Attestation(ctx, req.GetId())
	if err != nil {
		return nil, fmt.Errorf("ledger entry %q: %w", req.GetId(), err)
	}
	revoked, err := s.revs.get(ctx, s.st, s.cfg.Clock())
	if err != nil {
		return nil, err
	}
	return &vouchv1.GetLedgerEntryResponse{Entry: ledgerToProto(a, req.GetIncludeBundles(), revoked)}, nil
}

func ledgerToProto(a store.Attestation, bundles bool, revoked map[string]store.Revocation) *vouchv1.LedgerEntry {
	e := &vouchv1.LedgerEntry{Id: a.ID, Time: ts(a.Time), Identity: a.Builder}
	for _, s := range a.Subjects {
		e.Subjects = append(e.Subjects, &vouchv1.Subject{Name: s.Name, Digest: s.Digest})
	}
	seen := map[string]bool{}
	for _, p := range a.Packages {
		e.Packages = append(e.Packages, &vouchv1.LedgerPackage{
			Name: p.Name, Version: p.Version, Arch: p.Arch, Repository: p.Repository,
			Checksum: p.Checksum.String(), Datahash: p.DataHash, IndexSha256: p.IndexSHA256,
			Verdict: verdictFromName(p.Verdict),
		})
		if _, r := revoked[p.Checksum.Key()]; r && !seen[p.Checksum.Key()] {
			e.RevokedChecksums = append(e.RevokedChecksums, p.Checksum.String())
			seen[p.Checksum.Key()] = true
		}
	}
	// Predicates were stored subject by subject, the same number for each.
	per := 0
	if len(a.Subjects) > 0 {
		per = len(a.Predicates) / len(a.Subjects)
	}
	for i, p := range a.Predicates {
		la := &vouchv1.LedgerAttestation{PredicateType: p.Type, StatementSha256: p.Digest["sha256"]}
		if per > 0 && i/per < len(a.Subjects) {
			la.SubjectDigest = "sha256:" + a.Subjects[i/per].Digest["sha256"]
		}
		if bundles {
			la.Bundle = p.Bundle
		}
		e.Attestations = append(e.Attestations, la)
	}
	return e
}

func verdictFromName(n string) vouchv1.Verdict {
	if v, ok := vouchv1.Verdict_value["VERDICT_"+n]; ok {
		return vouchv1.Verdict(v)
	}
	return vouchv1.Verdict_VERDICT_UNSPECIFIED
}

// ListRevocations implements ReaderService.ListRevocations.
func (s *Server) ListRevocations(ctx context.Context, _ *vouchv1.ListRevocationsRequest) (*vouchv1.ListRevocationsResponse, error) {
	set, err := s.st.Revocations(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing revocations: %w", err)
	}
	resp := &vouchv1.ListRevocationsResponse{}
	for i := len(set.Revocations) - 1; i >= 0; i-- {
		resp.Revocations = append(resp.Revocations, revocationToProto(set.Revocations[i]))
	}
	return resp, nil
}

func revocationToProto(r store.Revocation) *vouchv1.Revocation {
	return &vouchv1.Revocation{Checksum: r.Checksum.String(), Reason: r.Reason, RevokedBy: r.By, Time: ts(r.At)}
}

// GetPublicKeys implements ReaderService.GetPublicKeys.
func (s *Server) GetPublicKeys(context.Context, *vouchv1.GetPublicKeysRequest) (*vouchv1.GetPublicKeysResponse, error) {
	pemBytes, id, err := attest.PublicKeyPEM(s.signer)
	if err != nil {
		return nil, fmt.Errorf("encoding the public key: %w", err)
	}
	return &vouchv1.GetPublicKeysResponse{Keys: []*vouchv1.PublicKey{{
		KeyId: id, Pem: string(pemBytes), Algorithm: keyAlgorithm(s.signer),
	}}}, nil
}

package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"errors"
	"fmt"

	"github.com/vouchdev/vouch/apk"
	"github.com/vouchdev/vouch/attest"
	"github.com/vouchdev/vouch/index"
	vouchv1 "github.com/vouchdev/vouch/proto/vouch/v1"
	"github.com/vouchdev/vouch/store"
)

const maxAffected = 1000

// RefreshRepository implements AdminService.RefreshRepository.
func (s *Server) RefreshRepository(ctx context.Context, req *vouchv1.RefreshRepositoryRequest) (*vouchv1.RefreshRepositoryResponse, error) {
	if _, ok := s.repos[req.GetRepository()]; !ok {
		return nil, fieldErr("repository", req.GetRepository(), "the name of a configured repository")
	}
	if a := req.GetArch(); a != "" && !isArch(a) {
		return nil, fieldErr("arch", a, "an architecture name")
	}
	results, err := s.idx.Refresh(ctx, req.GetRepository(), req.GetArch())
	if err != nil {
		if errors.Is(err, index.ErrUnknownRepository) {
			return nil, fieldErr("arch", req.GetArch(), "an architecture configured for the repository")
		}
		return nil, fmt.Errorf("refreshing %s: %w", req.GetRepository(), err)
	}
	resp := &vouchv1.RefreshRepositoryResponse{}
	for _, r := range results {
		ar := &vouchv1.ArchRefresh{Arch: r.Arch, IndexSha256: r.SHA256, EntryCount: uint64(r.Entries)}
		switch r.Outcome {
		case index.Updated:
			ar.Outcome = vouchv1.RefreshOutcome_REFRESH_OUTCOME_UPDATED
		case index.NotModified:
			ar.Outcome = vouchv1.RefreshOutcome_REFRESH_OUTCOME_NOT_MODIFIED
		case index.LoadedFromStore:
			ar.Outcome = vouchv1.RefreshOutcome_REFRESH_OUTCOME_LOADED_FROM_STORE
		case index.Failed:
			ar.Outcome = vouchv1.RefreshOutcome_REFRESH_OUTCOME_FAILED
		case index.Refused:
			ar.Outcome = vouchv1.RefreshOutcome_REFRESH_OUTCOME_REFUSED
		}
		if r.Err != nil {
			ar.Error = r.Err.Error()
		}
		resp.Results = append(resp.Results, ar)
	}
	return resp, nil
}

func parseChecksumField(field, v string) (apk.Checksum, error) {
	sum, err := apk.ParseChecksum(v)
	if err != nil {
		return apk.Checksum{}, fieldErr(field, v, "an APK identity checksum: Q1 + base64 SHA-1, or Q2/X1/X2")
	}
	return sum, nil
}

// RevokeChecksum implements AdminService.RevokeChecksum.
func (s *Server) RevokeChecksum(ctx context.Context, req *vouchv1.RevokeChecksumRequest) (*vouchv1.RevokeChecksumResponse, error) {
	sum, err := parseChecksumField("checksum", req.GetChecksum())
	if err != nil {
		return nil, err
	}
	if err := checkReason("reason", req.GetReason()); err != nil {
		return nil, err
	}
	caller, _ := CallerFrom(ctx)
	r := store.Revocation{Checksum: sum, Reason: req.GetReason(), By: caller.Identity, At: s.cfg.Clock().UTC()}
	err = s.st.Revoke(ctx, r)
	if errors.Is(err, store.ErrConflict) {
		// Revoking again updates the reason: lift, then revoke anew.
		if err = s.st.Unrevoke(ctx, sum, caller.Identity, r.At); err == nil {
			err = s.st.Revoke(ctx, r)
		}
	}
	s.revs.invalidate()
	if err != nil {
		return nil, fmt.Errorf("revoking %s: %w", sum, err)
	}
	s.log.InfoContext(ctx, "checksum revoked", "checksum", sum.String(), "by", caller.Identity, "reason", req.GetReason(), "request_id", requestID(ctx))
	affected, truncated, err := s.affected(ctx, sum)
	if err != nil {
		return nil, err
	}
	return &vouchv1.RevokeChecksumResponse{Revocation: revocationToProto(r), Affected: affected, Truncated: truncated}, nil
}

// UnrevokeChecksum implements AdminService.UnrevokeChecksum.
func (s *Server) UnrevokeChecksum(ctx context.Context, req *vouchv1.UnrevokeChecksumRequest) (*vouchv1.UnrevokeChecksumResponse, error) {
	sum, err := parseChecksumField("checksum", req.GetChecksum())
	if err != nil {
		return nil, err
	}
	if err := checkReason("reason", req.GetReason()); err != nil {
		return nil, err
	}
	caller, _ := CallerFrom(ctx)
	err = s.st.Unrevoke(ctx, sum, caller.Identity, s.cfg.Clock().UTC())
	s.revs.invalidate()
	resp := &vouchv1.UnrevokeChecksumResponse{WasRevoked: true}
	switch {
	case errors.Is(err, store.ErrNotFound):
		resp.WasRevoked = false
	case err != nil:
		return nil, fmt.Errorf("unrevoking %s: %w", sum, err)
	default:
		s.log.InfoContext(ctx, "checksum unrevoked", "checksum", sum.String(), "by", caller.Identity, "reason", req.GetReason(), "request_id", requestID(ctx))
	}
	affected, _, err := s.affected(ctx, sum)
	if err != nil {
		return nil, err
	}
	resp.Affected = affected
	return resp, nil
}

// affected lists the ledger entries that attested a package with sum.
func (s *Server) affected(ctx context.Context, sum apk.Checksum) ([]*vouchv1.LedgerEntry, bool, error) {
	revoked, err := s.revs.get(ctx, s.st, s.cfg.Clock())
	if err != nil {
		return nil, false, err
	}
	var out []*vouchv1.LedgerEntry
	q := store.AttestationQuery{Checksum: sum, PageSize: 1000}
	for {
		page, next, err := s.st.ListAttestations(ctx, q)
		if err != nil {
			return nil, false, fmt.Errorf("listing affected ledger entries: %w", err)
		}
		for _, a := range page {
			if len(out) == maxAffected {
				return out, true, nil
			}
			out = append(out, ledgerToProto(a, false, revoked))
		}
		if next == "" {
			return out, false, nil
		}
		q.PageToken = next
	}
}

// AcceptEquivocation implements AdminService.AcceptEquivocation.
func (s *Server) AcceptEquivocation(ctx context.Context, req *vouchv1.AcceptEquivocationRequest) (*vouchv1.AcceptEquivocationResponse, error) {
	if _, ok := s.repos[req.GetRepository()]; !ok {
		return nil, fieldErr("repository", req.GetRepository(), "the name of a configured repository")
	}
	if !isArch(req.GetArch()) {
		return nil, fieldErr("arch", req.GetArch(), "an architecture name")
	}
	if err := checkToken(req.GetName(), maxNameLen); err != nil {
		return nil, err.at("name")
	}
	if err := checkToken(req.GetVersion(), maxVersionLen); err != nil {
		return nil, err.at("version")
	}
	sum, err := parseChecksumField("checksum", req.GetChecksum())
	if err != nil {
		return nil, err
	}
	if err := checkReason("reason", req.GetReason()); err != nil {
		return nil, err
	}
	caller, _ := CallerFrom(ctx)
	ev, err := s.idx.AcceptEquivocation(ctx, req.GetRepository(), req.GetArch(), req.GetName(), req.GetVersion(), sum, req.GetReason(), caller.Identity)
	if err != nil {
		if errors.Is(err, index.ErrUnknownRepository) {
			return nil, fieldErr("arch", req.GetArch(), "an architecture configured for the repository")
		}
		return nil, fmt.Errorf("accepting equivocation: %w", err)
	}
	s.log.WarnContext(ctx, "equivocation accepted", "repository", req.GetRepository(), "arch", req.GetArch(),
		"name", req.GetName(), "version", req.GetVersion(), "checksum", sum.String(), "by", caller.Identity, "reason", req.GetReason())
	return &vouchv1.AcceptEquivocationResponse{Event: eventToProto(ev)}, nil
}

func keyAlgorithm(s attest.Signer) string {
	switch s.Public().(type) {
	case *ecdsa.PublicKey:
		return "ecdsa-p256-sha256"
	case ed25519.PublicKey:
		return "ed25519"
	}
	return "unknown"
}

func isInvalid(err error) bool { return errors.Is(err, store.ErrInvalidArgument) }

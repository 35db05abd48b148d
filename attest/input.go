package attest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/vouchdev/vouch/apk"
)

// ErrInvalidInput reports an Input that cannot be attested: a missing or
// malformed field, or a package listed twice. The wrapped message names the
// field. Callers treat it as their own bug (the server validated earlier)
// and issue nothing.
var ErrInvalidInput = errors.New("invalid attestation input")

// Subject is the artifact the attestation is about, usually an image
// manifest. Every deploy-time verifier matches only the sha256 digest.
type Subject struct {
	// Name identifies the subject for humans, e.g. "registry.example/app".
	// Required.
	Name string
	// Digest maps algorithm to lower-case hex, e.g. {"sha256": "…"} (in-toto
	// DigestSet). "sha256" is required; other entries are copied as given.
	Digest map[string]string
	// ResourceURI is the VSA resourceUri. Optional: when empty it is
	// "oci://<Name>@sha256:<hex>" (no "oci://" when Name has a scheme, no
	// digest suffix when Name already carries "@sha256:").
	ResourceURI string
}

// Repository is the configured APK repository a package was verified
// against.
type Repository struct {
	// Name is the configured repository name, e.g. "wolfi". Required.
	Name string
	// URL is the repository base URL (the folder holding <arch>/APKINDEX.tar.gz).
	// Optional: without it the SPDX downloadLocation is NOASSERTION.
	URL string
	// Supplier is the SPDX supplier, e.g. "Organization: Chainguard, Inc." or
	// just "Chainguard, Inc." (then taken as an organization). Optional:
	// NOASSERTION when empty.
	Supplier string
	// Distro is the purl namespace, e.g. "wolfi" or "alpine". Required.
	Distro string
}

// Match says which signed index decided a package.
type Match string

// Match values.
const (
	// MatchCurrent: the checksum is in the repository's current signed index.
	MatchCurrent Match = "current"
	// MatchHistory: the checksum was seen in an earlier signed index within
	// the configured window, and has since left the current one.
	MatchHistory Match = "history"
)

// Evidence is the signed index that verified a package.
type Evidence struct {
	// IndexURL is where the APKINDEX.tar.gz was fetched from. Required.
	IndexURL string
	// IndexSHA256 is the lower-case hex SHA-256 of that index file. Required.
	IndexSHA256 string
	// SigningKey is the name of the repository key whose signature verified
	// the index, e.g. "wolfi-signing.rsa.pub". Required.
	SigningKey string
	// FetchedAt is when that index was fetched. Required.
	FetchedAt time.Time
	// Match is MatchCurrent or MatchHistory. Required.
	Match Match
}

// Package is one verified APK: the builder's claim after vouch compared its
// checksum with a signed index.
type Package struct {
	Name    string // index P:, required
	Version string // index V:, required
	Arch    string // index A: of the index used (the image's arch), required
	// Checksum is the verified index C: value (SHA-1 of the control
	// member for apk v2). Required.
	Checksum apk.Checksum
	// DataHash is the verified lower-case hex SHA-256 of the data part
	// (.PKGINFO datahash). Optional: empty when the builder sent none.
	DataHash string
	// License is the index L: value, mapped to SPDX as documented in
	// docs/ATTESTATIONS.md. Optional.
	License string
	// Origin is the index o: value (the source package). Optional.
	Origin     string
	Repository Repository
	Evidence   Evidence
}

// Verifier identifies the software that verified the packages (VSA
// verifier).
type Verifier struct {
	// ID is a URI naming this verifier deployment. Default
	// DefaultVerifierID.
	ID string
	// Version is vouch's version. Required.
	Version string
}

// DefaultVerifierID is Verifier.ID when none is configured.
const DefaultVerifierID = "https://github.com/vouchdev/vouch"

// Policy identifies the policy the packages were verified against (VSA
// policy): which repositories and keys were trusted.
type Policy struct {
	// URI names the policy, e.g. "https://vouch.example/policy/prod".
	// Required.
	URI string
	// SHA256 is the lower-case hex SHA-256 of the effective repository and
	// key configuration, as computed by PolicyDigest or PolicyDigestBytes.
	// Required.
	SHA256 string
}

// Input is everything one subject's attestations are made from. Packages
// may come in any order; output is sorted so that equal inputs give equal
// bytes.
type Input struct {
	Subject  Subject
	Packages []Package // at least one
	Verifier Verifier
	Policy   Policy
	// InputAttestations are attestations vouch relied on (VSA
	// inputAttestations); usually empty.
	InputAttestations []ResourceDescriptor
	// Time is when the verification happened. When zero, Issue uses
	// SOURCE_DATE_EPOCH if set, else the current time (see Now).
	Time time.Time
}

// ResourceDescriptor is an in-toto v1 ResourceDescriptor reduced to the
// fields vouch uses.
type ResourceDescriptor struct {
	URI    string            `json:"uri,omitempty"`
	Digest map[string]string `json:"digest,omitempty"`
}

// Now returns the time attestations should carry when the caller gives
// none: SOURCE_DATE_EPOCH (seconds since the Unix epoch, per the
// reproducible-builds specification) when set, else the current time,
// truncated to seconds and in UTC. A malformed SOURCE_DATE_EPOCH is an
// error rather than being ignored.
func Now() (time.Time, error) {
	if v, ok := os.LookupEnv("SOURCE_DATE_EPOCH"); ok && v != "" {
		secs, err := strconv.ParseInt(v, 10, 64)
		if err != nil || secs < 0 {
			return time.Time{}, fmt.Errorf("%w: SOURCE_DATE_EPOCH=%q is not a non-negative integer", ErrInvalidInput, v)
		}
		return time.Unix(secs, 0).UTC(), nil
	}
	return time.Now().UTC().Truncate(time.Second), nil
}

// PolicyDigest returns the lower-case hex SHA-256 of v's JSON encoding
// (encoding/json: struct fields in declaration order, map keys sorted), so
// equal configurations give equal digests. v SHOULD hold the effective
// configuration — repository names, URLs, architectures and the trusted key
// bytes or their fingerprints, not file paths — so that a key change changes
// the digest.
func PolicyDigest(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("%w: encoding policy: %v", ErrInvalidInput, err)
	}
	return PolicyDigestBytes(b), nil
}

// PolicyDigestBytes returns the lower-case hex SHA-256 of b, for callers
// that already hold a canonical encoding of their configuration.
func PolicyDigestBytes(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func isLowerHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' }

// isAPKTokenByte: what P:, V: and A: may hold (no whitespace, no control
// characters, no '/', which would break the download path and purl).
func isAPKTokenByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '.' || c == '_' || c == '+' || c == '~' || c == '@' || c == '-'
}

// all reports whether s is non-empty and every byte satisfies ok. It
// replaces regular expressions on the per-package validation path.
func all(s string, ok func(byte) bool) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			return false
		}
	}
	return true
}

// isHexSHA256 reports whether s is 64 lower-case hex characters.
func isHexSHA256(s string) bool { return len(s) == 64 && all(s, isLowerHex) }

func invalid(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidInput}, a...)...)
}

// validate checks every field of in (duplicates are sortedPackages' job).
// It never modifies in.
func (in *Input) validate() error {
	if in.Subject.Name == "" {
		return invalid("subject.name is empty")
	}
	if strings.ContainsAny(in.Subject.Name, " \t\r\n") {
		return invalid("subject.name %q contains whitespace", in.Subject.Name)
	}
	if !isHexSHA256(in.Subject.Digest["sha256"]) {
		return invalid("subject.digest[sha256] %q is not 64 lower-case hex characters", in.Subject.Digest["sha256"])
	}
	for alg, d := range in.Subject.Digest {
		if alg == "" || !all(d, isLowerHex) {
			return invalid("subject.digest[%s] %q is not lower-case hex", alg, d)
		}
	}
	if len(in.Packages) == 0 {
		return invalid("packages is empty: nothing to attest")
	}
	if in.Verifier.Version == "" {
		return invalid("verifier.version is empty")
	}
	if in.Policy.URI == "" {
		return invalid("policy.uri is empty")
	}
	if !isHexSHA256(in.Policy.SHA256) {
		return invalid("policy.sha256 %q is not 64 lower-case hex characters", in.Policy.SHA256)
	}
	for i := range in.Packages {
		p := &in.Packages[i]
		field := func(f string) string { return fmt.Sprintf("packages[%d].%s", i, f) }
		for _, kv := range [][2]string{{"name", p.Name}, {"version", p.Version}, {"arch", p.Arch}} {
			if !all(kv[1], isAPKTokenByte) {
				return invalid("%s %q is empty or has characters outside [A-Za-z0-9._+~@-]", field(kv[0]), kv[1])
			}
		}
		if p.Checksum.IsZero() || len(p.Checksum.Digest) != p.Checksum.Alg.Size() {
			return invalid("%s is missing or malformed", field("checksum"))
		}
		if p.DataHash != "" && !isHexSHA256(p.DataHash) {
			return invalid("%s %q is not 64 lower-case hex characters", field("datahash"), p.DataHash)
		}
		if p.Repository.Name == "" {
			return invalid("%s is empty", field("repository.name"))
		}
		if err := CheckSupplier(p.Repository.Supplier); err != nil {
			return invalid("%s: %v", field("repository.supplier"), err)
		}
		if !all(p.Repository.Distro, isAPKTokenByte) {
			return invalid("%s %q is empty or malformed", field("repository.distro"), p.Repository.Distro)
		}
		if p.Evidence.IndexURL == "" || strings.ContainsAny(p.Evidence.IndexURL, " \t\r\n") {
			return invalid("%s %q is empty or has whitespace", field("evidence.index_url"), p.Evidence.IndexURL)
		}
		if !isHexSHA256(p.Evidence.IndexSHA256) {
			return invalid("%s %q is not 64 lower-case hex characters", field("evidence.index_sha256"), p.Evidence.IndexSHA256)
		}
		if p.Evidence.SigningKey == "" {
			return invalid("%s is empty", field("evidence.signing_key"))
		}
		if p.Evidence.FetchedAt.IsZero() {
			return invalid("%s is zero", field("evidence.fetched_at"))
		}
		if p.Evidence.Match != MatchCurrent && p.Evidence.Match != MatchHistory {
			return invalid("%s %q is neither %q nor %q", field("evidence.match"), p.Evidence.Match, MatchCurrent, MatchHistory)
		}
	}
	return nil
}

// resourceURI returns the VSA resourceUri for the subject: ResourceURI when
// set; else Name pinned to its digest ("@sha256:<hex>" appended unless
// present), with an "oci://" scheme added when Name has none.
func (s Subject) resourceURI() string {
	if s.ResourceURI != "" {
		return s.ResourceURI
	}
	u := s.Name
	if !strings.Contains(u, "@sha256:") {
		u += "@sha256:" + s.Digest["sha256"]
	}
	if !strings.Contains(u, "://") {
		u = "oci://" + u
	}
	return u
}

// verifierID returns the configured verifier id or the default.
func (v Verifier) id() string {
	if v.ID == "" {
		return DefaultVerifierID
	}
	return v.ID
}

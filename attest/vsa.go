package attest

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// PredicateTypeVSA is the in-toto predicate type of a SLSA Verification
// Summary Attestation v1.
const PredicateTypeVSA = "https://slsa.dev/verification_summary/v1"

// Verified levels vouch writes into the VSA. The VSA v1 specification lets a
// verifier use its own values as long as they do not start with "SLSA_".
const (
	// LevelIndexVerified: every package's checksum equals the C: of a signed
	// APKINDEX whose signature verified with a key pinned for its repository.
	LevelIndexVerified = "VOUCH_APK_INDEX_VERIFIED"
	// LevelDatahashVerified: additionally, every package had a datahash
	// (SHA-256 of its data part) that vouch checked.
	LevelDatahashVerified = "VOUCH_APK_DATAHASH_VERIFIED"
	// LevelIndexCurrent: additionally, every package was in the repository's
	// current signed index (none matched only through history).
	LevelIndexCurrent = "VOUCH_APK_INDEX_CURRENT"
)

// VerificationPassed is the only verificationResult vouch ever signs: no
// attestation is issued unless every package verified.
const VerificationPassed = "PASSED"

// VSA is the SLSA Verification Summary v1 predicate
// (https://slsa.dev/spec/v1.0/verification_summary), plus vouch's summary
// as an extension field (in-toto attestation v1 parsing rules allow
// extension fields with collision-resistant names).
type VSA struct {
	Verifier           VSAVerifier          `json:"verifier"`
	TimeVerified       string               `json:"timeVerified"`
	ResourceURI        string               `json:"resourceUri"`
	Policy             ResourceDescriptor   `json:"policy"`
	InputAttestations  []ResourceDescriptor `json:"inputAttestations"`
	VerificationResult string               `json:"verificationResult"`
	VerifiedLevels     []string             `json:"verifiedLevels"`
	Summary            *Summary             `json:"vouchSummary,omitempty"`
}

// VSAVerifier is the VSA verifier object: id and a map of component
// versions ({"vouch": "<version>"}).
type VSAVerifier struct {
	ID      string            `json:"id"`
	Version map[string]string `json:"version,omitempty"`
}

// Summary is vouch's extension to the VSA: what was verified, in short.
type Summary struct {
	// PackageCount is the number of APKs verified.
	PackageCount int `json:"packageCount"`
	// DatahashCount is how many of them also had a verified datahash.
	DatahashCount int `json:"datahashCount"`
	// HistoryCount is how many matched only an earlier signed index.
	HistoryCount int `json:"historyCount"`
	// Indexes lists each signed index used, sorted by repository and URL.
	Indexes []IndexUsed `json:"indexes"`
}

// IndexUsed is one signed index that verified at least one package.
type IndexUsed struct {
	Repository string `json:"repository"`
	URL        string `json:"url"`
	SHA256     string `json:"sha256"`
	SigningKey string `json:"signingKey"`
	FetchedAt  string `json:"fetchedAt"`
	Packages   int    `json:"packages"`
}

// BuildVSA returns the VSA predicate for in at time t. It is deterministic
// for equal input and t.
func BuildVSA(in *Input, t time.Time) (*VSA, error) {
	pkgs, err := sortedPackages(in)
	if err != nil {
		return nil, err
	}
	return buildVSA(in, pkgs, t), nil
}

func buildVSA(in *Input, pkgs []prepared, t time.Time) *VSA {
	sum := &Summary{PackageCount: len(pkgs), Indexes: []IndexUsed{}}
	type key struct{ repo, url, sha string }
	idx := make(map[key]int)
	for _, p := range pkgs {
		if p.DataHash != "" {
			sum.DatahashCount++
		}
		if p.Evidence.Match == MatchHistory {
			sum.HistoryCount++
		}
		k := key{p.Repository.Name, p.Evidence.IndexURL, p.Evidence.IndexSHA256}
		i, ok := idx[k]
		if !ok {
			i = len(sum.Indexes)
			idx[k] = i
			sum.Indexes = append(sum.Indexes, IndexUsed{
				Repository: p.Repository.Name,
				URL:        p.Evidence.IndexURL,
				SHA256:     p.Evidence.IndexSHA256,
				SigningKey: p.Evidence.SigningKey,
				FetchedAt:  p.Evidence.FetchedAt.UTC().Format(time.RFC3339),
			})
		}
		sum.Indexes[i].Packages++
	}
	slices.SortFunc(sum.Indexes, func(a, b IndexUsed) int {
		return cmp.Or(cmp.Compare(a.Repository, b.Repository), cmp.Compare(a.URL, b.URL), cmp.Compare(a.SHA256, b.SHA256))
	})

	levels := []string{LevelIndexVerified}
	if sum.DatahashCount == sum.PackageCount {
		levels = append(levels, LevelDatahashVerified)
	}
	if sum.HistoryCount == 0 {
		levels = append(levels, LevelIndexCurrent)
	}

	inputs := make([]ResourceDescriptor, 0, len(in.InputAttestations))
	inputs = append(inputs, in.InputAttestations...)

	return &VSA{
		Verifier: VSAVerifier{
			ID:      in.Verifier.id(),
			Version: map[string]string{"vouch": in.Verifier.Version},
		},
		TimeVerified:       t.UTC().Format(time.RFC3339),
		ResourceURI:        in.Subject.resourceURI(),
		Policy:             ResourceDescriptor{URI: in.Policy.URI, Digest: map[string]string{"sha256": in.Policy.SHA256}},
		InputAttestations:  inputs,
		VerificationResult: VerificationPassed,
		VerifiedLevels:     levels,
		Summary:            sum,
	}
}

func marshalVSA(v *VSA) ([]byte, error) {
	b, err := marshalNoEscape(v)
	if err != nil {
		return nil, fmt.Errorf("encoding VSA: %w", err)
	}
	return b, nil
}

// marshalNoEscape is json.Marshal without HTML escaping.
func marshalNoEscape(v any) ([]byte, error) {
	var buf jsonBuffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	b := buf.b
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
	}
	return b, nil
}

type jsonBuffer struct{ b []byte }

func (w *jsonBuffer) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

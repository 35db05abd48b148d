package attest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestIssueVerify(t *testing.T) {
	for _, kt := range []KeyType{KeyECDSAP256, KeyEd25519} {
		t.Run(string(kt), func(t *testing.T) {
			s := newTestSigner(t, kt)
			in := testInput(7)
			atts, err := Issue(context.Background(), s, in)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := len(atts), 2; got != want {
				t.Fatalf("Issue returned %d attestations; want %d", got, want)
			}
			ks := keySetOf(t, s)
			for _, a := range atts {
				for _, form := range []struct {
					name string
					data []byte
				}{{"bundle", a.Bundle}, {"envelope", a.Envelope}} {
					v, err := Verify(form.data, ks, Expect{SubjectSHA256: testSubjectSHA256, PredicateType: a.PredicateType})
					if err != nil {
						t.Fatalf("%s %s: Verify: %v", a.PredicateType, form.name, err)
					}
					if v.KeyID != s.KeyID() {
						t.Errorf("KeyID = %q; want %q", v.KeyID, s.KeyID())
					}
					if v.Bundle != (form.name == "bundle") {
						t.Errorf("Bundle = %v for %s", v.Bundle, form.name)
					}
					if !bytes.Equal(v.Statement.Predicate, predicateOf(t, a.Statement)) {
						t.Errorf("%s %s: predicate bytes changed", a.PredicateType, form.name)
					}
					switch a.PredicateType {
					case PredicateTypeSPDX:
						if v.SPDX == nil || len(v.SPDX.Packages) != len(in.Packages)+1 {
							t.Errorf("SPDX predicate not parsed: %+v", v.SPDX)
						}
					case PredicateTypeVSA:
						if v.VSA == nil || v.VSA.VerificationResult != VerificationPassed {
							t.Errorf("VSA predicate not parsed: %+v", v.VSA)
						}
					}
				}
			}
		})
	}
}

// predicateOf returns the predicate bytes of a statement as written.
func predicateOf(t testing.TB, stmt []byte) []byte {
	t.Helper()
	var s Statement
	if err := json.Unmarshal(stmt, &s); err != nil {
		t.Fatal(err)
	}
	return s.Predicate
}

func TestStatementShape(t *testing.T) {
	atts, err := Issue(context.Background(), newTestSigner(t, KeyECDSAP256), testInput(3))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range atts {
		var top map[string]json.RawMessage
		if err := json.Unmarshal(a.Statement, &top); err != nil {
			t.Fatal(err)
		}
		var keys []string
		for k := range top {
			keys = append(keys, k)
		}
		want := []string{"_type", "predicate", "predicateType", "subject"}
		if diff := cmp.Diff(want, sortStrings(keys)); diff != "" {
			t.Errorf("%s: statement fields (-want +got):\n%s", a.PredicateType, diff)
		}
		if bytes.Contains(a.Statement, []byte(`\u0026`)) {
			t.Errorf("%s: statement has HTML-escaped '&'", a.PredicateType)
		}
		// The envelope and the bundle carry the same signature and payload.
		var env struct {
			PayloadType string `json:"payloadType"`
			Payload     string `json:"payload"`
			Signatures  []struct {
				KeyID string `json:"keyid"`
				Sig   string `json:"sig"`
			} `json:"signatures"`
		}
		if err := json.Unmarshal(a.Envelope, &env); err != nil {
			t.Fatal(err)
		}
		var b struct {
			MediaType            string `json:"mediaType"`
			VerificationMaterial struct {
				PublicKey struct {
					Hint string `json:"hint"`
				} `json:"publicKey"`
			} `json:"verificationMaterial"`
			DsseEnvelope struct {
				Payload    string `json:"payload"`
				Signatures []struct {
					Sig string `json:"sig"`
				} `json:"signatures"`
			} `json:"dsseEnvelope"`
		}
		if err := json.Unmarshal(a.Bundle, &b); err != nil {
			t.Fatal(err)
		}
		if b.MediaType != BundleMediaType {
			t.Errorf("bundle mediaType = %q; want %q", b.MediaType, BundleMediaType)
		}
		if env.PayloadType != PayloadType || len(env.Signatures) != 1 || len(b.DsseEnvelope.Signatures) != 1 {
			t.Fatalf("unexpected envelope %s", a.Envelope)
		}
		if env.Signatures[0].Sig != b.DsseEnvelope.Signatures[0].Sig || env.Payload != b.DsseEnvelope.Payload {
			t.Errorf("envelope and bundle differ")
		}
		if env.Signatures[0].KeyID != b.VerificationMaterial.PublicKey.Hint {
			t.Errorf("envelope keyid %q != bundle hint %q", env.Signatures[0].KeyID, b.VerificationMaterial.PublicKey.Hint)
		}
		payload, _ := base64.StdEncoding.DecodeString(env.Payload)
		if !bytes.Equal(payload, a.Statement) {
			t.Errorf("envelope payload is not the statement")
		}
	}
}

func sortStrings(s []string) []string {
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s
}

func TestIssueReproducible(t *testing.T) {
	// Ed25519 signatures are deterministic, so everything must be equal.
	s := newTestSigner(t, KeyEd25519)
	in := testInput(20)
	a1, err := Issue(context.Background(), s, in)
	if err != nil {
		t.Fatal(err)
	}
	// Same packages in reverse order: same bytes.
	rev := in
	rev.Packages = nil
	for i := len(in.Packages) - 1; i >= 0; i-- {
		rev.Packages = append(rev.Packages, in.Packages[i])
	}
	a2, err := Issue(context.Background(), s, rev)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(a1, a2); diff != "" {
		t.Errorf("Issue not reproducible (-first +second):\n%s", diff)
	}
	// Only the time changes the statements.
	later := in
	later.Time = testTime.Add(time.Hour)
	a3, err := Issue(context.Background(), s, later)
	if err != nil {
		t.Fatal(err)
	}
	for i := range a1 {
		if bytes.Equal(a1[i].Statement, a3[i].Statement) {
			t.Errorf("%s: time did not change the statement", a1[i].PredicateType)
		}
		got := strings.ReplaceAll(string(a3[i].Statement), "2026-11-05T11:30:00Z", "2026-11-05T10:30:00Z")
		if got != string(a1[i].Statement) {
			t.Errorf("%s: statements differ in more than the time", a1[i].PredicateType)
		}
	}
}

func TestIssueSourceDateEpoch(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	in := testInput(2)
	in.Time = zeroTime
	atts, err := Issue(context.Background(), newTestSigner(t, KeyEd25519), in)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(atts[1].Statement, []byte(`"timeVerified":"2023-11-14T22:13:20Z"`)) {
		t.Errorf("VSA does not carry SOURCE_DATE_EPOCH: %s", atts[1].Statement)
	}
	t.Setenv("SOURCE_DATE_EPOCH", "yesterday")
	if _, err := Issue(context.Background(), newTestSigner(t, KeyEd25519), in); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("malformed SOURCE_DATE_EPOCH: err = %v; want ErrInvalidInput", err)
	}
}

func TestIssueInvalidInput(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Input)
	}{
		{name: "no subject name", mutate: func(in *Input) { in.Subject.Name = "" }},
		{name: "no sha256", mutate: func(in *Input) { in.Subject.Digest = map[string]string{"sha512": "ab"} }},
		{name: "upper-case digest", mutate: func(in *Input) { in.Subject.Digest["sha256"] = strings.ToUpper(testSubjectSHA256) }},
		{name: "no packages", mutate: func(in *Input) { in.Packages = nil }},
		{name: "no verifier version", mutate: func(in *Input) { in.Verifier.Version = "" }},
		{name: "no policy uri", mutate: func(in *Input) { in.Policy.URI = "" }},
		{name: "bad policy digest", mutate: func(in *Input) { in.Policy.SHA256 = "xyz" }},
		{name: "package name with slash", mutate: func(in *Input) { in.Packages[0].Name = "a/b" }},
		{name: "empty version", mutate: func(in *Input) { in.Packages[0].Version = "" }},
		{name: "zero checksum", mutate: func(in *Input) { in.Packages[0].Checksum.Digest = nil }},
		{name: "bad datahash", mutate: func(in *Input) { in.Packages[0].DataHash = "00" }},
		{name: "supplier type without name", mutate: func(in *Input) { in.Packages[0].Repository.Supplier = "Person:  " }},
		{name: "no distro", mutate: func(in *Input) { in.Packages[0].Repository.Distro = "" }},
		{name: "no repository name", mutate: func(in *Input) { in.Packages[0].Repository.Name = "" }},
		{name: "no index url", mutate: func(in *Input) { in.Packages[0].Evidence.IndexURL = "" }},
		{name: "bad index sha256", mutate: func(in *Input) { in.Packages[0].Evidence.IndexSHA256 = "00" }},
		{name: "no signing key", mutate: func(in *Input) { in.Packages[0].Evidence.SigningKey = "" }},
		{name: "no fetch time", mutate: func(in *Input) { in.Packages[0].Evidence.FetchedAt = zeroTime }},
		{name: "bad match", mutate: func(in *Input) { in.Packages[0].Evidence.Match = "maybe" }},
		{name: "duplicate package", mutate: func(in *Input) { in.Packages = append(in.Packages, in.Packages[0]) }},
	}
	s := newTestSigner(t, KeyEd25519)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := testInput(3)
			tt.mutate(&in)
			if _, err := Issue(context.Background(), s, in); !errors.Is(err, ErrInvalidInput) {
				t.Errorf("Issue err = %v; want ErrInvalidInput", err)
			}
		})
	}
}

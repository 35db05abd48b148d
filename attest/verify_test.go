package attest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// issued returns the SPDX attestation of a small input signed by s.
func issued(t testing.TB, s Signer) Attestation {
	t.Helper()
	atts, err := Issue(context.Background(), s, testInput(3))
	if err != nil {
		t.Fatal(err)
	}
	return atts[0]
}

// mutateJSON decodes b into a generic map, applies f and re-encodes.
func mutateJSON(t testing.TB, b []byte, f func(map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	f(m)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// tamperPayload renames the subject in the signed statement of an envelope
// or bundle (both keep the payload base64 under "payload").
func tamperPayload(t testing.TB, b []byte) []byte {
	t.Helper()
	return mutateJSON(t, b, func(m map[string]any) {
		env := m
		if d, ok := m["dsseEnvelope"].(map[string]any); ok {
			env = d
		}
		p, _ := base64.StdEncoding.DecodeString(env["payload"].(string))
		q := bytes.Replace(p, []byte("registry.example/team/app"), []byte("registry.example/team/evil"), 1)
		if bytes.Equal(p, q) {
			t.Fatal("tamperPayload: the payload does not name the test subject")
		}
		env["payload"] = base64.StdEncoding.EncodeToString(q)
	})
}

// resign signs a new statement with s and returns the envelope and bundle.
func resign(t testing.TB, s Signer, stmt []byte) Attestation {
	t.Helper()
	a, err := SignStatement(context.Background(), s, stmt)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestVerifyErrors(t *testing.T) {
	good := newTestSigner(t, KeyECDSAP256)
	other := newTestSigner(t, KeyEd25519)
	a := issued(t, good)
	ks := keySetOf(t, good)
	want := Expect{SubjectSHA256: testSubjectSHA256}

	wrongType := resign(t, good, bytes.Replace(a.Statement, []byte(`"predicateType":"https://spdx.dev/Document"`),
		[]byte(`"predicateType":"https://example.com/other/v1"`), 1))
	extraField := resign(t, good, append(bytes.TrimSuffix(a.Statement, []byte("}")), []byte(`,"extra":1}`)...))
	notStatement := resign(t, good, []byte(`{"hello":"world"}`))
	nullPredicate := resign(t, good, []byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"x","digest":{"sha256":"`+testSubjectSHA256+`"}}],"predicateType":"https://spdx.dev/Document","predicate":null}`))
	duplicateField := resign(t, good, []byte(`{"_type":"https://in-toto.io/Statement/v1","_type":"https://in-toto.io/Statement/v1","subject":[],"predicateType":"x","predicate":{}}`))
	badPredicate := resign(t, good, bytes.Replace(a.Statement, []byte(`"spdxVersion":"SPDX-2.3"`), []byte(`"spdxVersion":7`), 1))
	noKeyID := mutateJSON(t, a.Envelope, func(m map[string]any) {
		m["signatures"].([]any)[0].(map[string]any)["keyid"] = ""
	})
	noKeyIDTampered := tamperPayload(t, noKeyID)
	otherPayloadType := mutateJSON(t, a.Envelope, func(m map[string]any) { m["payloadType"] = "text/plain" })

	tests := []struct {
		name    string
		data    []byte
		keys    *KeySet
		want    Expect
		wantErr error
	}{
		{name: "bundle ok", data: a.Bundle, keys: ks, want: want},
		{name: "envelope ok", data: a.Envelope, keys: ks, want: want},
		{name: "envelope without keyid ok", data: noKeyID, keys: ks, want: want},
		{name: "predicate type asked for", data: a.Bundle, keys: ks, want: Expect{SubjectSHA256: testSubjectSHA256, PredicateType: PredicateTypeSPDX}},
		{name: "bundle wrong key", data: a.Bundle, keys: keySetOf(t, other), want: want, wantErr: ErrUnknownKey},
		{name: "envelope wrong key", data: a.Envelope, keys: keySetOf(t, other), want: want, wantErr: ErrUnknownKey},
		{name: "no keys", data: a.Bundle, keys: nil, want: want, wantErr: ErrUnknownKey},
		{name: "bundle tampered", data: tamperPayload(t, a.Bundle), keys: ks, want: want, wantErr: ErrBadSignature},
		{name: "envelope tampered", data: tamperPayload(t, a.Envelope), keys: ks, want: want, wantErr: ErrBadSignature},
		{name: "envelope tampered without keyid", data: noKeyIDTampered, keys: keySetOf(t, good, other), want: want, wantErr: ErrBadSignature},
		{name: "payloadType changed", data: otherPayloadType, keys: ks, want: want, wantErr: ErrBadSignature},
		{name: "bundle subject mismatch", data: a.Bundle, keys: ks, want: Expect{SubjectSHA256: hexOf("other")}, wantErr: ErrSubjectMismatch},
		{name: "envelope subject mismatch", data: a.Envelope, keys: ks, want: Expect{SubjectSHA256: hexOf("other")}, wantErr: ErrSubjectMismatch},
		{name: "asked for VSA got SPDX", data: a.Bundle, keys: ks, want: Expect{SubjectSHA256: testSubjectSHA256, PredicateType: PredicateTypeVSA}, wantErr: ErrPredicateType},
		{name: "unknown predicate type", data: wrongType.Bundle, keys: ks, want: want, wantErr: ErrPredicateType},
		{name: "statement with extra field", data: extraField.Bundle, keys: ks, want: want, wantErr: ErrMalformed},
		{name: "payload not a statement", data: notStatement.Envelope, keys: ks, want: want, wantErr: ErrMalformed},
		{name: "null predicate", data: nullPredicate.Bundle, keys: ks, want: want, wantErr: ErrMalformed},
		{name: "duplicate statement field", data: duplicateField.Bundle, keys: ks, want: want, wantErr: ErrMalformed},
		{name: "trailing data after bundle", data: append(append([]byte(nil), a.Bundle...), []byte(" {}")...), keys: ks, want: want, wantErr: ErrMalformed},
		{name: "bad base64 payload", data: mutateJSON(t, a.Envelope, func(m map[string]any) { m["payload"] = "!!!" }), keys: ks, want: want, wantErr: ErrMalformed},
		{name: "predicate does not parse", data: badPredicate.Bundle, keys: ks, want: want, wantErr: ErrMalformed},
		{name: "not JSON", data: []byte("not json"), keys: ks, want: want, wantErr: ErrMalformed},
		{name: "neither bundle nor envelope", data: []byte(`{"a":1}`), keys: ks, want: want, wantErr: ErrMalformed},
		{name: "unknown bundle media type", data: mutateJSON(t, a.Bundle, func(m map[string]any) { m["mediaType"] = "application/x-unknown" }), keys: ks, want: want, wantErr: ErrMalformed},
		{name: "bundle with a certificate", data: mutateJSON(t, a.Bundle, func(m map[string]any) {
			m["verificationMaterial"] = map[string]any{"certificate": map[string]any{"rawBytes": "AAAA"}}
		}), keys: ks, want: want, wantErr: ErrUnknownKey},
		{name: "bundle without envelope", data: mutateJSON(t, a.Bundle, func(m map[string]any) {
			delete(m, "dsseEnvelope")
		}), keys: ks, want: want, wantErr: ErrMalformed},
		{name: "envelope without signatures", data: mutateJSON(t, a.Envelope, func(m map[string]any) { m["signatures"] = []any{} }), keys: ks, want: want, wantErr: ErrMalformed},
		{name: "missing expected digest", data: a.Bundle, keys: ks, want: Expect{}, wantErr: ErrInvalidInput},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Verify(tt.data, tt.keys, tt.want)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Verify err = %v; want %v", err, tt.wantErr)
			}
		})
	}
}

func TestKeySetRefusesP384(t *testing.T) {
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewKeySet(k.Public()); !errors.Is(err, ErrUnsupportedKey) || !strings.Contains(err.Error(), "cosign") {
		t.Errorf("NewKeySet(P-384) err = %v; want ErrUnsupportedKey naming cosign", err)
	}
}

package attest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sigstore/sigstore-go/pkg/sign"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
)

// TestBundleJSONMatchesProtojson: the hand-written bundle decodes, with
// protojson, to exactly the message sigstore-go built, for both key types
// and for payloads from empty to large; anything outside the shape is
// refused so that protojson takes over.
func TestBundleJSONMatchesProtojson(t *testing.T) {
	for _, kt := range []KeyType{KeyECDSAP256, KeyEd25519} {
		kp, err := newKeypair(newTestSigner(t, kt))
		if err != nil {
			t.Fatal(err)
		}
		for _, payload := range [][]byte{[]byte("{}"), []byte(`{"a":"\"quoted\" \u2028 & <tag>"}`), make([]byte, 64<<10)} {
			b, err := sign.Bundle(&sign.DSSEData{Data: payload, PayloadType: PayloadType}, kp, sign.BundleOptions{Context: context.Background()})
			if err != nil {
				t.Fatal(err)
			}
			b64 := base64.StdEncoding.AppendEncode(nil, payload)
			got, ok := appendBundleJSON(nil, b, b64)
			if !ok {
				t.Fatalf("%v: appendBundleJSON refused sigstore-go's own bundle", kt)
			}
			var back protobundle.Bundle
			if err := protojson.Unmarshal(got, &back); err != nil {
				t.Fatalf("%v: protojson cannot read it: %v\n%s", kt, err, got[:min(len(got), 400)])
			}
			if diff := cmp.Diff(b, &back, protocmp.Transform()); diff != "" {
				t.Errorf("%v: decoded bundle differs (-sigstore-go +ours):\n%s", kt, diff)
			}

			// The envelope: encoding/json reads back what was signed.
			env, envB64 := appendEnvelopeJSON(nil, PayloadType, payload, kp.s.KeyID(), b.GetDsseEnvelope().GetSignatures()[0].GetSig())
			if string(envB64) != string(b64) {
				t.Errorf("appendEnvelopeJSON's payload base64 %.40q…; want %.40q…", envB64, b64)
			}
			var e envelope
			if err := json.Unmarshal(env, &e); err != nil {
				t.Fatalf("envelope: %v", err)
			}
			want := envelope{PayloadType: PayloadType, Payload: payload, Signatures: []envelopeSignature{{KeyID: kp.s.KeyID(), Sig: b.GetDsseEnvelope().GetSignatures()[0].GetSig()}}}
			if diff := cmp.Diff(want, e); diff != "" {
				t.Errorf("envelope (-want +got):\n%s", diff)
			}
		}
	}

	// Shapes it does not write.
	kp, err := newKeypair(newTestSigner(t, KeyECDSAP256))
	if err != nil {
		t.Fatal(err)
	}
	base, err := sign.Bundle(&sign.DSSEData{Data: []byte("{}"), PayloadType: PayloadType}, kp, sign.BundleOptions{Context: context.Background()})
	if err != nil {
		t.Fatal(err)
	}
	for name, alter := range map[string]func(b *protobundle.Bundle){
		"tlog entry": func(b *protobundle.Bundle) {
			b.VerificationMaterial.TlogEntries = []*protorekor.TransparencyLogEntry{{}}
		},
		"timestamps": func(b *protobundle.Bundle) {
			b.VerificationMaterial.TimestampVerificationData = &protobundle.TimestampVerificationData{}
		},
		"certificate": func(b *protobundle.Bundle) {
			b.VerificationMaterial.Content = &protobundle.VerificationMaterial_Certificate{Certificate: &protocommon.X509Certificate{}}
		},
		"two signatures": func(b *protobundle.Bundle) {
			b.GetDsseEnvelope().Signatures = append(b.GetDsseEnvelope().Signatures, b.GetDsseEnvelope().Signatures[0])
		},
		"message signature": func(b *protobundle.Bundle) {
			b.Content = &protobundle.Bundle_MessageSignature{MessageSignature: &protocommon.MessageSignature{}}
		},
	} {
		b := proto.Clone(base).(*protobundle.Bundle)
		alter(b)
		if _, ok := appendBundleJSON(nil, b, nil); ok {
			t.Errorf("%s: appendBundleJSON wrote a bundle it does not cover", name)
		}
	}
}

// TestDSSEContentPAE: what vouch hands sigstore-go to sign is byte for byte
// sigstore-go's own PAE.
func TestDSSEContentPAE(t *testing.T) {
	for _, payload := range [][]byte{nil, []byte("{}"), []byte("héllo \x00\xff %s %d"), make([]byte, 1<<20)} {
		for _, typ := range []string{PayloadType, "", "x y"} {
			d := &sign.DSSEData{Data: payload, PayloadType: typ}
			if got, want := (dsseContent{DSSEData: d}).PreAuthEncoding(), d.PreAuthEncoding(); string(got) != string(want) {
				t.Errorf("PAE(%q, %d bytes) = %.60q…; sigstore-go %.60q…", typ, len(payload), got, want)
			}
		}
	}
}

// TestSignablePAE: the PAE formed in place before a statement is pae's,
// and forming it leaves the statement as it was.
func TestSignablePAE(t *testing.T) {
	for _, pred := range []string{`{}`, `"x"`, `{"a":"` + strings.Repeat("b", 1<<20) + `"}`} {
		s, err := marshalStatement(Subject{Name: "x", Digest: map[string]string{"sha256": testSubjectSHA256}}, PredicateTypeVSA, []byte(pred))
		if err != nil {
			t.Fatal(err)
		}
		stmt := bytes.Clone(s.statement())
		if !json.Valid(stmt) {
			t.Fatalf("statement is not JSON: %.80q", stmt)
		}
		got := s.pae()
		if want := pae(PayloadType, stmt); !bytes.Equal(got, want) {
			t.Errorf("signable.pae() = %.80q…; pae %.80q…", got, want)
		}
		if !bytes.Equal(s.statement(), stmt) {
			t.Errorf("pae() changed the statement")
		}
		if c := cap(s.statement()); c != len(stmt) {
			t.Errorf("statement capacity %d; want %d (appending must not write into the buffer)", c, len(stmt))
		}
	}
}

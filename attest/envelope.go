package attest

import (
	"encoding/base64"
	"strconv"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
)

// envelope is a DSSE envelope
// (https://github.com/secure-systems-lab/dsse/blob/master/envelope.md):
// payload and sig are standard base64 in JSON ([]byte does that).
type envelope struct {
	PayloadType string              `json:"payloadType"`
	Payload     []byte              `json:"payload"`
	Signatures  []envelopeSignature `json:"signatures"`
}

type envelopeSignature struct {
	KeyID string `json:"keyid"`
	Sig   []byte `json:"sig"`
}

// appendEnvelopeJSON writes the DSSE envelope of one signature over
// payload, and returns the payload's standard base64 as written inside it
// (for the bundle, which shares it). The output decodes, with
// encoding/json, to the same envelope (tested).
func appendEnvelopeJSON(b []byte, payloadType string, payload []byte, keyID string, sig []byte) (out, payloadB64 []byte) {
	b = append(b, `{"payloadType":`...)
	b = appendJSONString(b, payloadType)
	b = append(b, `,"payload":"`...)
	start := len(b)
	b = base64.StdEncoding.AppendEncode(b, payload)
	end := len(b)
	b = append(b, `","signatures":[{"keyid":`...)
	b = appendJSONString(b, keyID)
	b = append(b, `,"sig":"`...)
	b = base64.StdEncoding.AppendEncode(b, sig)
	b = append(b, `"}]}`...)
	return b, b[start:end:end]
}

// appendBundleJSON writes a Sigstore bundle of the shape vouch signs — media
// type, a public-key hint as the only verification material, one DSSE
// envelope with one signature — as protojson encodes it (field names in
// lowerCamelCase, bytes in standard base64, empty fields left out), but in
// one pass, deterministically, and with the payload's base64 given. It
// reports false when b holds anything else (certificates, transparency-log
// entries, timestamps, unknown fields): the caller then uses protojson.
func appendBundleJSON(dst []byte, b *protobundle.Bundle, payloadB64 []byte) ([]byte, bool) {
	vm := b.GetVerificationMaterial()
	env := b.GetDsseEnvelope()
	pk := vm.GetPublicKey()
	switch {
	case pk == nil, env == nil, len(env.GetSignatures()) != 1,
		len(vm.GetTlogEntries()) != 0, vm.GetTimestampVerificationData() != nil,
		len(b.ProtoReflect().GetUnknown()) != 0, len(vm.ProtoReflect().GetUnknown()) != 0,
		len(pk.ProtoReflect().GetUnknown()) != 0, len(env.ProtoReflect().GetUnknown()) != 0,
		len(env.GetSignatures()[0].ProtoReflect().GetUnknown()) != 0:
		return dst, false
	}
	sig := env.GetSignatures()[0]
	dst = append(dst, '{')
	if mt := b.GetMediaType(); mt != "" {
		dst = append(dst, `"mediaType":`...)
		dst = appendJSONString(dst, mt)
		dst = append(dst, ',')
	}
	dst = append(dst, `"verificationMaterial":{"publicKey":{`...)
	if h := pk.GetHint(); h != "" {
		dst = append(dst, `"hint":`...)
		dst = appendJSONString(dst, h)
	}
	dst = append(dst, `}},"dsseEnvelope":{`...)
	if len(payloadB64) > 0 {
		dst = append(dst, `"payload":"`...)
		dst = append(dst, payloadB64...)
		dst = append(dst, `",`...)
	}
	if pt := env.GetPayloadType(); pt != "" {
		dst = append(dst, `"payloadType":`...)
		dst = appendJSONString(dst, pt)
		dst = append(dst, ',')
	}
	dst = append(dst, `"signatures":[{`...)
	comma := false
	if s := sig.GetSig(); len(s) > 0 {
		dst = append(dst, `"sig":"`...)
		dst = base64.StdEncoding.AppendEncode(dst, s)
		dst = append(dst, '"')
		comma = true
	}
	if k := sig.GetKeyid(); k != "" {
		if comma {
			dst = append(dst, ',')
		}
		dst = append(dst, `"keyid":`...)
		dst = appendJSONString(dst, k)
	}
	return append(dst, `}]}}`...), true
}

// pae is the DSSE v1 Pre-Authentication Encoding:
//
//	PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body
//
// with LEN the ASCII decimal byte length (DSSE protocol.md, "Signature
// definition").
func pae(payloadType string, payload []byte) []byte {
	b := appendPAEHeader(make([]byte, 0, 32+len(payloadType)+len(payload)), payloadType, len(payload))
	return append(b, payload...)
}

// appendPAEHeader appends what PAE puts before the payload:
// "DSSEv1 <len(payloadType)> <payloadType> <payloadLen> ".
func appendPAEHeader(b []byte, payloadType string, payloadLen int) []byte {
	b = append(b, "DSSEv1 "...)
	b = strconv.AppendInt(b, int64(len(payloadType)), 10)
	b = append(b, ' ')
	b = append(b, payloadType...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(payloadLen), 10)
	return append(b, ' ')
}

package attest

import (
	"encoding/json"
	"strconv"
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

func marshalEnvelope(e *envelope) ([]byte, error) { return json.Marshal(e) }

// pae is the DSSE v1 Pre-Authentication Encoding:
//
//	PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body
//
// with LEN the ASCII decimal byte length (DSSE protocol.md, "Signature
// definition").
func pae(payloadType string, payload []byte) []byte {
	b := make([]byte, 0, 32+len(payloadType)+len(payload))
	b = append(b, "DSSEv1 "...)
	b = strconv.AppendInt(b, int64(len(payloadType)), 10)
	b = append(b, ' ')
	b = append(b, payloadType...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(len(payload)), 10)
	b = append(b, ' ')
	b = append(b, payload...)
	return b
}

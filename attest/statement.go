package attest

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// StatementType is the in-toto Statement v1 _type.
const StatementType = "https://in-toto.io/Statement/v1"

// PayloadType is the DSSE payloadType of an in-toto Statement.
const PayloadType = "application/vnd.in-toto+json"

// Statement is an in-toto Statement v1
// (https://github.com/in-toto/attestation/blob/main/spec/v1/statement.md)
// with exactly its four fields: cosign refuses any other top-level field.
// Predicate holds the predicate bytes exactly as they were written.
type Statement struct {
	Type          string          `json:"_type"`
	Subject       []StatementSubj `json:"subject"`
	PredicateType string          `json:"predicateType"`
	Predicate     json.RawMessage `json:"predicate"`
}

// StatementSubj is one statement subject (a ResourceDescriptor with name and
// digest).
type StatementSubj struct {
	Name   string            `json:"name"`
	Digest map[string]string `json:"digest"`
}

// marshalStatement writes the statement with the predicate bytes copied
// verbatim (they MUST be valid JSON; callers pass encoder output): encoding/json would re-compact a RawMessage and, by default,
// HTML-escape it, changing the bytes that were validated.
func marshalStatement(subject Subject, predicateType string, predicate []byte) ([]byte, error) {
	subj, err := marshalNoEscape([]StatementSubj{{Name: subject.Name, Digest: subject.Digest}})
	if err != nil {
		return nil, fmt.Errorf("encoding statement subject: %w", err)
	}
	pt, err := marshalNoEscape(predicateType)
	if err != nil {
		return nil, fmt.Errorf("encoding predicate type: %w", err)
	}
	var b bytes.Buffer
	b.Grow(len(predicate) + len(subj) + 128)
	b.WriteString(`{"_type":"` + StatementType + `","subject":`)
	b.Write(subj)
	b.WriteString(`,"predicateType":`)
	b.Write(pt)
	b.WriteString(`,"predicate":`)
	b.Write(predicate)
	b.WriteByte('}')
	return b.Bytes(), nil
}

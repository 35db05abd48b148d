package attest

import (
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
// verbatim (they MUST be valid JSON; callers pass encoder output):
// encoding/json would re-compact a RawMessage and, by default, HTML-escape
// it, changing the bytes that were validated.
func marshalStatement(subject Subject, predicateType string, predicate []byte) (signable, error) {
	b, err := statementHead(subject, predicateType, len(predicate))
	if err != nil {
		return signable{}, err
	}
	b = append(b, predicate...)
	return signable{append(b, '}')}, nil
}

// statementHead returns, after paeRoom unused bytes, the statement up to
// and including `"predicate":`, with room for predicateSize bytes of
// predicate and the closing '}' that the caller appends.
func statementHead(subject Subject, predicateType string, predicateSize int) ([]byte, error) {
	subj, err := marshalNoEscape([]StatementSubj{{Name: subject.Name, Digest: subject.Digest}})
	if err != nil {
		return nil, fmt.Errorf("encoding statement subject: %w", err)
	}
	const head = `{"_type":"` + StatementType + `","subject":`
	b := make([]byte, paeRoom, paeRoom+len(head)+len(subj)+len(predicateType)+64+predicateSize)
	b = append(b, head...)
	b = append(b, subj...)
	b = append(b, `,"predicateType":`...)
	b = appendJSONString(b, predicateType)
	return append(b, `,"predicate":`...), nil
}

// paeRoom is what a signable keeps before its statement: room for the
// longest DSSE PAE header, "DSSEv1 <len(PayloadType)> <PayloadType> <len> "
// (lengths in decimal, at most 20 digits).
const paeRoom = len("DSSEv1 ") + 20 + 1 + len(PayloadType) + 1 + 20 + 1

// signable is a statement kept paeRoom bytes into its buffer, so that its
// DSSE PAE, which is most of what is signed, is formed in place rather than
// by copying the multi-megabyte statement once more.
type signable struct{ buf []byte }

// statement returns the statement bytes (capacity cut at their end).
func (s signable) statement() []byte {
	return s.buf[paeRoom:len(s.buf):len(s.buf)]
}

// pae writes the PAE header into the room before the statement and returns
// PAE(PayloadType, statement) (equal to pae's; tested), sharing the
// statement's bytes.
func (s signable) pae() []byte {
	var h [paeRoom]byte
	hdr := appendPAEHeader(h[:0], PayloadType, len(s.buf)-paeRoom)
	start := paeRoom - len(hdr)
	copy(s.buf[start:paeRoom], hdr)
	return s.buf[start:len(s.buf):len(s.buf)]
}

// Package common holds what the store backends share: validation, page tokens and value encodings.
package common

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/vouchdev/vouch/apk"
	"github.com/vouchdev/vouch/store"
)

// Page size defaults of the list calls.
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
)

// PageSize applies the documented defaults to a requested page size.
func PageSize(n int) int {
	switch {
	case n <= 0:
		return DefaultPageSize
	case n > MaxPageSize:
		return MaxPageSize
	default:
		return n
	}
}

// Micro converts a time to the stored form: Unix microseconds.
func Micro(t time.Time) int64 { return t.UnixMicro() }

// FromMicro converts stored Unix microseconds back to a UTC time.
func FromMicro(us int64) time.Time { return time.UnixMicro(us).UTC() }

// Trunc returns t as it reads back from a store: UTC, microsecond precision.
func Trunc(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return FromMicro(t.UnixMicro())
}

// Checksum renders a checksum in its stored (canonical text) form.
func Checksum(c apk.Checksum) string { return c.String() }

// ParseChecksum reads a stored checksum; "" is the zero value.
func ParseChecksum(s string) (apk.Checksum, error) {
	if s == "" {
		return apk.Checksum{}, nil
	}
	c, err := apk.ParseChecksum(s)
	if err != nil {
		return apk.Checksum{}, fmt.Errorf("reading stored checksum: %w", err)
	}
	return c, nil
}

// JSON marshals v for a text column; the values stored this way (string
// slices and maps) always marshal.
func JSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic("store: marshalling " + err.Error())
	}
	return string(b)
}

// subjectJSON is the stored form of a store.Subject: explicit names, so the
// stored data does not depend on Go field names.
type subjectJSON struct {
	Name   string            `json:"name"`
	Digest map[string]string `json:"digest"`
}

// EncodeSubjects renders subjects for a text column.
func EncodeSubjects(subjects []store.Subject) string {
	out := make([]subjectJSON, len(subjects))
	for i, s := range subjects {
		out[i] = subjectJSON{Name: s.Name, Digest: s.Digest}
	}
	return JSON(out)
}

// DecodeSubjects reads what EncodeSubjects wrote; an empty list is nil.
func DecodeSubjects(text string) ([]store.Subject, error) {
	var in []subjectJSON
	if err := json.Unmarshal([]byte(text), &in); err != nil {
		return nil, fmt.Errorf("reading subjects: %w", err)
	}
	var out []store.Subject
	for _, s := range in {
		out = append(out, store.Subject{Name: s.Name, Digest: s.Digest})
	}
	return out, nil
}

// ValidateSnapshot checks a SaveSnapshot call that does not need stored
// state.
func ValidateSnapshot(s store.Snapshot, d store.Diff) error {
	switch {
	case s.Repository == "":
		return fmt.Errorf("%w: snapshot repository is empty", store.ErrInvalidArgument)
	case s.Arch == "":
		return fmt.Errorf("%w: snapshot arch is empty", store.ErrInvalidArgument)
	case len(s.SHA256) != 64:
		return fmt.Errorf("%w: snapshot sha256 %q is not 64 hex digits", store.ErrInvalidArgument, s.SHA256)
	case s.FetchedAt.IsZero():
		return fmt.Errorf("%w: snapshot fetch time is zero", store.ErrInvalidArgument)
	case len(s.Raw) == 0:
		return fmt.Errorf("%w: snapshot raw bytes are empty", store.ErrInvalidArgument)
	case s.EntryCount < 0:
		return fmt.Errorf("%w: snapshot entry count %d is negative", store.ErrInvalidArgument, s.EntryCount)
	case s.Parent < 0:
		return fmt.Errorf("%w: snapshot parent %d is negative", store.ErrInvalidArgument, s.Parent)
	case s.Parent == 0 && len(d.Removed) > 0:
		return fmt.Errorf("%w: first snapshot removes %d entries", store.ErrInvalidArgument, len(d.Removed))
	}
	for _, l := range [][]store.Entry{d.Added, d.Removed} {
		for _, e := range l {
			if e.Name == "" || e.Version == "" || e.Checksum.IsZero() {
				return fmt.Errorf("%w: diff entry %q %q %q is incomplete", store.ErrInvalidArgument, e.Name, e.Version, e.Checksum)
			}
		}
	}
	return nil
}

// CheckDuplicates refuses a diff that adds the same entry twice.
func CheckDuplicates(added []store.Entry) error {
	seen := make(map[string]struct{}, len(added))
	for _, e := range added {
		k := e.Name + "\x00" + e.Version + "\x00" + e.Checksum.Key()
		if _, dup := seen[k]; dup {
			return fmt.Errorf("%w: added entry %s %s %s is listed twice", store.ErrConflict, e.Name, e.Version, e.Checksum)
		}
		seen[k] = struct{}{}
	}
	return nil
}

// CheckCount checks a snapshot's entry count against its parent's and the
// diff.
func CheckCount(s store.Snapshot, parentCount int, d store.Diff) error {
	if want := parentCount + len(d.Added) - len(d.Removed); s.EntryCount != want {
		return fmt.Errorf("%w: entry count %d, but parent has %d, +%d -%d = %d", store.ErrInvalidArgument, s.EntryCount, parentCount, len(d.Added), len(d.Removed), want)
	}
	return nil
}

// ValidateAttestation checks an AppendAttestation call.
func ValidateAttestation(a store.Attestation) error {
	if a.Time.IsZero() {
		return fmt.Errorf("%w: attestation time is zero", store.ErrInvalidArgument)
	}
	for i, p := range a.Packages {
		if p.Checksum.IsZero() {
			return fmt.Errorf("%w: attestation package %d (%q) has no checksum", store.ErrInvalidArgument, i, p.Name)
		}
	}
	for i, s := range a.Subjects {
		for alg := range s.Digest {
			if alg == "" || strings.Contains(alg, ":") {
				return fmt.Errorf("%w: attestation subject %d has digest algorithm %q", store.ErrInvalidArgument, i, alg)
			}
		}
	}
	return nil
}

// ParseSubjectDigest splits an "alg:hex" filter.
func ParseSubjectDigest(s string) (alg, value string, err error) {
	alg, value, ok := strings.Cut(s, ":")
	if !ok || alg == "" || value == "" {
		return "", "", fmt.Errorf("%w: subject digest %q is not alg:hex", store.ErrInvalidArgument, s)
	}
	return alg, strings.ToLower(value), nil
}

// AttestationCursor is the position after the last entry of a ledger page.
type AttestationCursor struct {
	TimeMicro int64
	ID        string
}

// EncodeAttestationToken makes an opaque page token.
func EncodeAttestationToken(c AttestationCursor) string {
	return base64.RawURLEncoding.EncodeToString([]byte("a1:" + strconv.FormatInt(c.TimeMicro, 10) + ":" + c.ID))
}

// DecodeAttestationToken reads a page token; "" is the first page (nil).
func DecodeAttestationToken(tok string) (*AttestationCursor, error) {
	if tok == "" {
		return nil, nil
	}
	bad := fmt.Errorf("%w: malformed page token", store.ErrInvalidArgument)
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return nil, bad
	}
	parts := strings.SplitN(string(b), ":", 3)
	if len(parts) != 3 || parts[0] != "a1" || parts[2] == "" {
		return nil, bad
	}
	us, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return nil, bad
	}
	return &AttestationCursor{TimeMicro: us, ID: parts[2]}, nil
}

// EncodeEventToken makes an opaque page token from the last event id.
func EncodeEventToken(id int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte("e1:" + strconv.FormatInt(id, 10)))
}

// DecodeEventToken reads a page token; "" is the first page (0).
func DecodeEventToken(tok string) (int64, error) {
	if tok == "" {
		return 0, nil
	}
	bad := fmt.Errorf("%w: malformed page token", store.ErrInvalidArgument)
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return 0, bad
	}
	s, ok := strings.CutPrefix(string(b), "e1:")
	if !ok {
		return 0, bad
	}
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, bad
	}
	return id, nil
}

// ValidateEvent checks an AppendEvent call.
func ValidateEvent(e store.Event) error {
	switch {
	case e.Kind == "":
		return fmt.Errorf("%w: event kind is empty", store.ErrInvalidArgument)
	case e.Repository == "":
		return fmt.Errorf("%w: event repository is empty", store.ErrInvalidArgument)
	case e.Time.IsZero():
		return fmt.Errorf("%w: event time is zero", store.ErrInvalidArgument)
	}
	return nil
}

// LockKey derives a 64-bit advisory lock key from a namespace (such as a
// schema name) and parts.
func LockKey(parts ...string) int64 {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return int64(binary.BigEndian.Uint64(h.Sum(nil)[:8]))
}

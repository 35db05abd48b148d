package attest

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
)

// errJSON is the one error the scanner reports; callers wrap it with
// ErrMalformed and where it happened.
var errJSON = errors.New("invalid JSON")

// maxJSONDepth bounds nesting while skipping values.
const maxJSONDepth = 256

// jsonScanner is a small, strict JSON (RFC 8259) reader for the envelope
// layers Verify must read on every call: bundle, DSSE envelope and
// statement. Those layers are mostly one long base64 string or one large
// predicate, which encoding/json scans byte by byte twice (validation, then
// decoding); this reader finds string ends with bytes.IndexByte and checks
// skipped values once. It rejects duplicate keys in the objects it walks.
// Everything it accepts is valid JSON (FuzzJSONScanner checks that against
// encoding/json).
type jsonScanner struct {
	b []byte
	i int
}

func (s *jsonScanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek returns the next non-space byte, or 0 at the end.
func (s *jsonScanner) peek() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *jsonScanner) consume(c byte) bool {
	if s.peek() == c {
		s.i++
		return true
	}
	return false
}

// end reports whether only whitespace remains.
func (s *jsonScanner) end() bool { return s.peek() == 0 && s.i == len(s.b) }

// stringToken returns the raw bytes of the next string, quotes included,
// and whether it contains escapes.
func (s *jsonScanner) stringToken() (tok []byte, escaped bool, err error) {
	if s.peek() != '"' {
		return nil, false, errJSON
	}
	start := s.i
	s.i++
	j := bytes.IndexByte(s.b[s.i:], '"')
	if j < 0 {
		return nil, false, errJSON
	}
	seg := s.b[s.i : s.i+j]
	if bytes.IndexByte(seg, '\\') < 0 {
		if hasControl(seg) {
			return nil, false, errJSON
		}
		s.i += j + 1
		return s.b[start:s.i], false, nil
	}
	// Slow path: walk escapes until the closing quote.
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return s.b[start:s.i], true, nil
		case c < 0x20:
			return nil, false, errJSON
		case c == '\\':
			if s.i+1 >= len(s.b) {
				return nil, false, errJSON
			}
			switch s.b[s.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i += 2
			case 'u':
				if s.i+6 > len(s.b) {
					return nil, false, errJSON
				}
				for _, h := range s.b[s.i+2 : s.i+6] {
					if !(h >= '0' && h <= '9' || h >= 'a' && h <= 'f' || h >= 'A' && h <= 'F') {
						return nil, false, errJSON
					}
				}
				s.i += 6
			default:
				return nil, false, errJSON
			}
		default:
			s.i++
		}
	}
	return nil, false, errJSON
}

// hasControl reports whether b holds a byte below 0x20, which RFC 8259 §7
// forbids unescaped in strings. It tests eight bytes at a time: for each
// byte x, (x - 0x20) borrows into the high bit only when x < 0x20 (or the
// high bit was already set, which ^x masks out).
func hasControl(b []byte) bool {
	const lo, hi = 0x2020202020202020, 0x8080808080808080
	for len(b) >= 8 {
		x := binary.LittleEndian.Uint64(b)
		if (x-lo)&^x&hi != 0 {
			for _, c := range b[:8] {
				if c < 0x20 {
					return true
				}
			}
		}
		b = b[8:]
	}
	for _, c := range b {
		if c < 0x20 {
			return true
		}
	}
	return false
}

// str reads the next string value.
func (s *jsonScanner) str() (string, error) {
	tok, escaped, err := s.stringToken()
	if err != nil {
		return "", err
	}
	if !escaped {
		return string(tok[1 : len(tok)-1]), nil
	}
	var v string
	if err := json.Unmarshal(tok, &v); err != nil {
		return "", errJSON
	}
	return v, nil
}

// bytesB64 reads the next string value as base64, as protobuf's JSON
// mapping allows for bytes fields: standard or URL-safe alphabet, padded or
// not.
func (s *jsonScanner) bytesB64() ([]byte, error) {
	tok, escaped, err := s.stringToken()
	if err != nil {
		return nil, err
	}
	body := tok[1 : len(tok)-1]
	if escaped {
		var v string
		if err := json.Unmarshal(tok, &v); err != nil {
			return nil, errJSON
		}
		body = []byte(v)
	}
	padded := len(body)%4 == 0
	var firstErr error
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
		if !padded {
			enc = enc.WithPadding(base64.NoPadding)
		}
		out := make([]byte, enc.DecodedLen(len(body)))
		n, err := enc.Strict().Decode(out, body)
		if err == nil {
			return out[:n], nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, fmt.Errorf("%w: base64: %v", errJSON, firstErr)
}

// object walks the next object, calling field for every key; field MUST
// consume the value (parse or skip it). Duplicate keys are an error.
func (s *jsonScanner) object(field func(key string) error) error {
	return s.walkObject(true, field)
}

// walkObject is object, with the duplicate check optional: skipped values
// need no check, and skipping must not allocate per object.
func (s *jsonScanner) walkObject(noDup bool, field func(key string) error) error {
	if !s.consume('{') {
		return errJSON
	}
	if s.consume('}') {
		return nil
	}
	var seen map[string]struct{}
	if noDup {
		seen = make(map[string]struct{}, 8)
	}
	for {
		var key string
		if noDup {
			k, err := s.str()
			if err != nil {
				return err
			}
			if _, dup := seen[k]; dup {
				return fmt.Errorf("%w: duplicate key %q", errJSON, k)
			}
			seen[k] = struct{}{}
			key = k
		} else if _, _, err := s.stringToken(); err != nil {
			return err
		}
		if !s.consume(':') {
			return errJSON
		}
		if err := field(key); err != nil {
			return err
		}
		if s.consume(',') {
			continue
		}
		if s.consume('}') {
			return nil
		}
		return errJSON
	}
}

// array walks the next array, calling elem for every element; elem MUST
// consume it.
func (s *jsonScanner) array(elem func() error) error {
	if !s.consume('[') {
		return errJSON
	}
	if s.consume(']') {
		return nil
	}
	for {
		if err := elem(); err != nil {
			return err
		}
		if s.consume(',') {
			continue
		}
		if s.consume(']') {
			return nil
		}
		return errJSON
	}
}

// raw skips the next value, checking it, and returns its bytes.
func (s *jsonScanner) raw() ([]byte, error) {
	s.ws()
	start := s.i
	if err := s.skip(0); err != nil {
		return nil, err
	}
	return s.b[start:s.i], nil
}

// skip checks and skips the next value.
func (s *jsonScanner) skip(depth int) error {
	if depth > maxJSONDepth {
		return fmt.Errorf("%w: nested deeper than %d", errJSON, maxJSONDepth)
	}
	switch c := s.peek(); {
	case c == '{':
		return s.walkObject(false, func(string) error { return s.skip(depth + 1) })
	case c == '[':
		return s.array(func() error { return s.skip(depth + 1) })
	case c == '"':
		_, _, err := s.stringToken()
		return err
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		return s.number()
	default:
		return errJSON
	}
}

func (s *jsonScanner) literal(lit string) error {
	if !bytes.HasPrefix(s.b[s.i:], []byte(lit)) {
		return errJSON
	}
	s.i += len(lit)
	return nil
}

// number checks RFC 8259 §6: -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?
func (s *jsonScanner) number() error {
	b := s.b
	if s.i < len(b) && b[s.i] == '-' {
		s.i++
	}
	digits := func() int {
		n := 0
		for s.i < len(b) && b[s.i] >= '0' && b[s.i] <= '9' {
			s.i++
			n++
		}
		return n
	}
	switch {
	case s.i < len(b) && b[s.i] == '0':
		s.i++
	case digits() == 0:
		return errJSON
	}
	if s.i < len(b) && b[s.i] == '.' {
		s.i++
		if digits() == 0 {
			return errJSON
		}
	}
	if s.i < len(b) && (b[s.i] == 'e' || b[s.i] == 'E') {
		s.i++
		if s.i < len(b) && (b[s.i] == '+' || b[s.i] == '-') {
			s.i++
		}
		if digits() == 0 {
			return errJSON
		}
	}
	return nil
}

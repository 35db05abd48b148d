package attest

import (
	"encoding/json"
	"testing"
)

func TestJSONScannerSkip(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr bool
	}{
		{name: "object", in: `{"a":[1,-2.5e+3,true,false,null,"x\"\\\/\b\f\n\r\t\u00e9"],"b":{}}`},
		{name: "empty array", in: ` [ ] `},
		{name: "zero", in: `0`},
		{name: "leading zero", in: `01`, wantErr: true},
		{name: "bare minus", in: `-`, wantErr: true},
		{name: "dot without digits", in: `1.`, wantErr: true},
		{name: "exponent without digits", in: `1e`, wantErr: true},
		{name: "control character in string", in: "\"a\x01b\"", wantErr: true},
		{name: "bad escape", in: `"\x"`, wantErr: true},
		{name: "short unicode escape", in: `"\u12"`, wantErr: true},
		{name: "unterminated string", in: `"abc`, wantErr: true},
		{name: "trailing comma", in: `[1,]`, wantErr: true},
		{name: "missing colon", in: `{"a" 1}`, wantErr: true},
		{name: "bad literal", in: `tru`, wantErr: true},
		{name: "trailing data", in: `{} {}`, wantErr: true},
		{name: "deep nesting", in: repeat("[", 300) + repeat("]", 300), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &jsonScanner{b: []byte(tt.in)}
			err := s.skip(0)
			if err == nil && !s.end() {
				err = errJSON
			}
			if (err != nil) != tt.wantErr {
				t.Errorf("skip(%q) err = %v; wantErr %v", tt.in, err, tt.wantErr)
			}
		})
	}
}

func TestJSONScannerDuplicateKeys(t *testing.T) {
	s := &jsonScanner{b: []byte(`{"a":1,"a":2}`)}
	if err := s.object(func(string) error { return s.skip(0) }); err == nil {
		t.Errorf("duplicate key accepted")
	}
}

func repeat(s string, n int) string {
	out := make([]byte, 0, len(s)*n)
	for range n {
		out = append(out, s...)
	}
	return string(out)
}

// FuzzJSONScanner checks that whatever the scanner accepts, encoding/json
// accepts too, and that decodeAttestation never panics.
func FuzzJSONScanner(f *testing.F) {
	for _, s := range []string{`{"a":[1,2,{"b":"c"}]}`, `"\u00e9"`, `-0.5e-7`, `{"payloadType":"x","payload":"eA==","signatures":[{"sig":"eA=="}]}`,
		`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"publicKey":{"hint":"h"}},"dsseEnvelope":{"payload":"","payloadType":"t","signatures":[{"sig":""}]}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s := &jsonScanner{b: b}
		if err := s.skip(0); err == nil && s.end() && !json.Valid(b) {
			t.Fatalf("scanner accepted invalid JSON %q", b)
		}
		_, _, _, _ = decodeAttestation(b)
		var st Statement
		_ = decodeStatement(b, &st)
	})
}

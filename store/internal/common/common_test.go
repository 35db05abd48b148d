package common

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/vouchdev/vouch/store"
)

func TestAttestationToken(t *testing.T) {
	want := AttestationCursor{TimeMicro: 1777636800123456, ID: "01HX:with:colons"}
	got, err := DecodeAttestationToken(EncodeAttestationToken(want))
	if err != nil {
		t.Fatalf("DecodeAttestationToken = %v", err)
	}
	if diff := cmp.Diff(&want, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	if c, err := DecodeAttestationToken(""); c != nil || err != nil {
		t.Errorf(`DecodeAttestationToken("") = %v, %v; want nil, nil`, c, err)
	}
}

func TestMalformedTokens(t *testing.T) {
	tests := []struct {
		name    string
		token   string
		decode  func(string) error
		wantErr error
	}{
		{"attestation: not base64", "@@", func(s string) error { _, err := DecodeAttestationToken(s); return err }, store.ErrInvalidArgument},
		{"attestation: event token", EncodeEventToken(5), func(s string) error { _, err := DecodeAttestationToken(s); return err }, store.ErrInvalidArgument},
		{"attestation: no id", "YTE6MTI6", func(s string) error { _, err := DecodeAttestationToken(s); return err }, store.ErrInvalidArgument},
		{"event: attestation token", EncodeAttestationToken(AttestationCursor{1, "x"}), func(s string) error { _, err := DecodeEventToken(s); return err }, store.ErrInvalidArgument},
		{"event: zero id", "ZTE6MA", func(s string) error { _, err := DecodeEventToken(s); return err }, store.ErrInvalidArgument},
		{"event: valid", EncodeEventToken(42), func(s string) error { _, err := DecodeEventToken(s); return err }, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.decode(tc.token); !errors.Is(err, tc.wantErr) {
				t.Errorf("decode(%q) = %v, want %v", tc.token, err, tc.wantErr)
			}
		})
	}
}

func TestLockKeySeparatesParts(t *testing.T) {
	if LockKey("refresh", "a", "bc") == LockKey("refresh", "ab", "c") {
		t.Error("LockKey(a, bc) == LockKey(ab, c)")
	}
}

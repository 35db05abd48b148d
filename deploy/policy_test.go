package deploy_test

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"cuelang.org/go/cue/cuecontext"
	cuejson "cuelang.org/go/encoding/json"
)

// TestCUEPolicy evaluates policy/vouch-spdx.cue the way cosign
// verify-attestation --policy and policy-controller do (the statement JSON
// validated against the policy value, with the CUE version cosign v3.1.3
// builds with), against the golden SPDX statement and altered copies of it.
func TestCUEPolicy(t *testing.T) {
	src, err := os.ReadFile("policy/vouch-spdx.cue")
	if err != nil {
		t.Fatal(err)
	}
	policy := cuecontext.New().CompileBytes(src)
	if err := policy.Err(); err != nil {
		t.Fatalf("compiling the policy: %v", err)
	}
	golden, err := os.ReadFile("../attest/testdata/spdx.statement.golden.json")
	if err != nil {
		t.Fatal(err)
	}
	vsa, err := os.ReadFile("../attest/testdata/vsa.statement.golden.json")
	if err != nil {
		t.Fatal(err)
	}
	// alter returns the golden statement changed by f.
	alter := func(f func(st map[string]any, pkgs []any)) []byte {
		var st map[string]any
		if err := json.Unmarshal(golden, &st); err != nil {
			t.Fatal(err)
		}
		f(st, st["predicate"].(map[string]any)["packages"].([]any))
		b, err := json.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	pkg := func(pkgs []any, i int) map[string]any { return pkgs[i].(map[string]any) }
	tests := []struct {
		name    string
		stmt    []byte
		wantErr bool
	}{
		{"vouch's SPDX statement", golden, false},
		{"VSA statement", vsa, true},
		{"other predicate type", alter(func(st map[string]any, _ []any) { st["predicateType"] = "https://cyclonedx.org/bom" }), true},
		{"SPDX 2.2", alter(func(st map[string]any, _ []any) { st["predicate"].(map[string]any)["spdxVersion"] = "SPDX-2.2" }), true},
		{"no predicate type", alter(func(st map[string]any, _ []any) { delete(st, "predicateType") }), true},
		{"no spdxVersion", alter(func(st map[string]any, _ []any) { delete(st["predicate"].(map[string]any), "spdxVersion") }), true},
		{"no packages field", alter(func(st map[string]any, _ []any) { delete(st["predicate"].(map[string]any), "packages") }), true},
		{"no packages", alter(func(st map[string]any, _ []any) { st["predicate"].(map[string]any)["packages"] = []any{} }), true},
		{"first package without checksums", alter(func(_ map[string]any, p []any) { delete(pkg(p, 0), "checksums") }), true},
		{"first package with an empty checksum list", alter(func(_ map[string]any, p []any) { pkg(p, 0)["checksums"] = []any{} }), true},
		{"a later package without checksums", alter(func(_ map[string]any, p []any) { delete(pkg(p, len(p)-1), "checksums") }), true},
		{"first checksum of a package malformed", alter(func(_ map[string]any, p []any) {
			pkg(p, 1)["checksums"].([]any)[0].(map[string]any)["checksumValue"] = "not hex"
		}), true},
		{"SHA1 with a SHA-256 length", alter(func(_ map[string]any, p []any) {
			pkg(p, 1)["checksums"] = []any{map[string]any{"algorithm": "SHA1", "checksumValue": strings.Repeat("a", 64)}}
		}), true},
		{"upper-case hex", alter(func(_ map[string]any, p []any) {
			pkg(p, 1)["checksums"] = []any{map[string]any{"algorithm": "SHA1", "checksumValue": strings.Repeat("A", 40)}}
		}), true},
		{"checksum without algorithm", alter(func(_ map[string]any, p []any) {
			pkg(p, 1)["checksums"] = []any{map[string]any{"checksumValue": strings.Repeat("a", 40)}}
		}), true},
		{"MD5", alter(func(_ map[string]any, p []any) {
			pkg(p, 1)["checksums"] = []any{map[string]any{"algorithm": "MD5", "checksumValue": strings.Repeat("a", 32)}}
		}), true},
		{"extra fields are fine", alter(func(st map[string]any, p []any) {
			pkg(p, 1)["comment"] = "kept"
			st["predicate"].(map[string]any)["comment"] = "kept"
		}), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := cuejson.Validate(tt.stmt, policy)
			if (err != nil) != tt.wantErr {
				t.Errorf("Validate = %v, wantErr %v", err, tt.wantErr)
			}
		})
	}
}

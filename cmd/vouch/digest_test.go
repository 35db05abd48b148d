package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestDigestCmd(t *testing.T) {
	good := fixture("alpine/alpine-baselayout-3.2.0-r23.aarch64.apk")
	unsigned := fixture("wolfi/perl-json-4.11-r0.x86_64.unsigned.apk")
	tampered := fixture("wolfi/tampered/neon-4604-r0.aarch64.apk")
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  []string
	}{
		{name: "good", args: []string{good}, wantOut: []string{"alpine-baselayout", "3.2.0-r23", "aarch64", "Q1LLq2qDNrS/qRnhxQ3hsY/sHbQnc=", "1a3a8e47d2287da6d505d973412cee1ad64bcc17bc5995069e4e932055ecb0c4", "ok"}},
		{name: "unsigned", args: []string{unsigned}, wantOut: []string{"Q1w0Rl6HA39gsEkqaJArR01meHQmQ="}},
		{name: "tampered", args: []string{good, tampered}, wantCode: 1, wantOut: []string{"FAIL: data hash mismatch"}},
		{name: "signature check", args: []string{"--keys", fixture("keys"), good}, wantOut: []string{"ok"}},
		{name: "not a package", args: []string{fixture("lock/wolfi-real.apko.lock.json")}, wantCode: 1, wantOut: []string{"FAIL: malformed .apk"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(append([]string{"digest"}, tt.args...), &stdout, &stderr)
			if code != tt.wantCode {
				t.Fatalf("exit code %d, want %d (stderr %q)", code, tt.wantCode, stderr.String())
			}
			for _, w := range tt.wantOut {
				if !strings.Contains(stdout.String(), w) {
					t.Errorf("stdout %q does not contain %q", stdout.String(), w)
				}
			}
		})
	}
}

func TestDigestCmdJSON(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run([]string{"digest", "--json", "--keys", fixture("keys"),
		fixture("pmos/x86_64/mkbootimg-14.1-r1.apk"), fixture("wolfi/tampered/neon-4604-r0.aarch64.apk")}, &stdout, &stderr)
	if code != 1 {
		t.Fatalf("exit code %d, want 1", code)
	}
	var rep digestReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("%v: %s", err, stdout.String())
	}
	if rep.OK || len(rep.Packages) != 2 {
		t.Fatalf("report = %+v", rep)
	}
	p, n := rep.Packages[0], rep.Packages[1]
	if !p.OK || p.Name != "mkbootimg" || p.Arch != "noarch" || p.Checksum != "Q1cT3MEEqHawVavj61ER4TEpwAJ4M=" || p.DatahashVerdict != "ok" || !p.Signed || !p.Signatures[0].Verified {
		t.Errorf("mkbootimg = %+v", p)
	}
	if n.OK || n.DatahashVerdict != "mismatch" || !strings.Contains(n.Error, "bad signature") {
		t.Errorf("neon = %+v", n)
	}
}

package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestDemo(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"demo", "--dir", t.TempDir()}, &out, &errOut); code != 0 {
		t.Fatalf("vouch demo exited %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
	}
	for _, want := range []string{
		"every package matched the signed index: attestations issued",
		"hello                    CHECKSUM_MISMATCH",
		"overall: CHECKSUM_MISMATCH — 0 attestations, no ledger entry",
		": ADMITTED — signed by",
		"image B sha256:",
		"a tampered copy of image A's attestation: REFUSED",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q\n%s", want, out.String())
		}
	}
}

package index

import "testing"

func TestCompareVersions(t *testing.T) {
	for _, tc := range []struct {
		name, a, b string
		want       int
	}{
		{name: "equal", a: "1.2.3-r0", b: "1.2.3-r0", want: 0},
		{name: "revision", a: "1.2.3-r1", b: "1.2.3-r0", want: 1},
		{name: "numeric not lexical", a: "1.10", b: "1.9", want: 1},
		{name: "first component numeric", a: "10.0", b: "9.0", want: 1},
		{name: "more components", a: "1.2.3", b: "1.2", want: 1},
		{name: "letter", a: "1.2a", b: "1.2", want: 1},
		{name: "digit beats letter", a: "1.2.1", b: "1.2a", want: 1},
		{name: "pre-release older", a: "1.2_rc1", b: "1.2", want: -1},
		{name: "alpha before beta", a: "1.2_alpha2", b: "1.2_beta1", want: -1},
		{name: "patch newer", a: "1.2_p1", b: "1.2", want: 1},
		{name: "git after release", a: "1.2_git20240101", b: "1.2", want: 1},
		{name: "leading zero is a fraction", a: "1.05", b: "1.1", want: -1},
		{name: "revision absent is oldest", a: "1.2-r0", b: "1.2", want: 1},
		{name: "commit hash ignored", a: "1.2-r0~abc123", b: "1.2-r0", want: 0},
		{name: "wolfi style", a: "3.0.13-r2", b: "3.0.9-r5", want: 1},
		{name: "invalid after valid", a: "latest", b: "1.0", want: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := compareVersions(tc.a, tc.b); got != tc.want {
				t.Errorf("compareVersions(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
			}
			if got := compareVersions(tc.b, tc.a); got != -tc.want {
				t.Errorf("compareVersions(%q, %q) = %d, want %d", tc.b, tc.a, got, -tc.want)
			}
		})
	}
}

func FuzzCompareVersions(f *testing.F) {
	for _, s := range []string{"1.2.3-r0", "1.2_rc1", "1.2a_p3-r10", "", "x", "1..2", "1.2-r"} {
		f.Add(s, "1.2.3-r0")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		if compareVersions(a, b) != -compareVersions(b, a) {
			t.Errorf("compareVersions not antisymmetric for %q, %q", a, b)
		}
		if compareVersions(a, a) != 0 {
			t.Errorf("compareVersions(%q, %q) != 0", a, a)
		}
	})
}

package index

import "strings"

// Version ordering of apk-tools (version.c), used only to recognise a
// rollback: "1.2.3" > "1.2a" > "1.2_p1" > "1.2-r1" > "1.2-r0" > "1.2" >
// "1.2_rc1". A trailing "~<hash>" is ignored.

type parsedVersion struct {
	nums     []string // dot-separated numeric components
	letter   byte     // 0 when absent
	suffixes []suffix
	rev      int64 // -1 when absent
}

type suffix struct {
	rank int // index in suffixRank
	num  string
}

// suffixRank orders the suffixes; those before "" are pre-releases.
var suffixRank = []string{"alpha", "beta", "pre", "rc", "", "cvs", "svn", "git", "hg", "p"}

const releaseRank = 4

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func digits(s string) (string, string) {
	i := 0
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	return s[:i], s[i:]
}

func parseVersion(s string) (parsedVersion, bool) {
	v := parsedVersion{rev: -1}
	if i := strings.IndexByte(s, '~'); i >= 0 {
		s = s[:i]
	}
	d, rest := digits(s)
	if d == "" {
		return v, false
	}
	v.nums = append(v.nums, d)
	for len(rest) > 0 && rest[0] == '.' {
		d, rest = digits(rest[1:])
		if d == "" {
			return v, false
		}
		v.nums = append(v.nums, d)
	}
	if len(rest) > 0 && rest[0] >= 'a' && rest[0] <= 'z' {
		v.letter = rest[0]
		rest = rest[1:]
	}
	for len(rest) > 0 && rest[0] == '_' {
		rest = rest[1:]
		i := 0
		for i < len(rest) && rest[i] >= 'a' && rest[i] <= 'z' {
			i++
		}
		name := rest[:i]
		rank := -1
		for r, n := range suffixRank {
			if n == name && n != "" {
				rank = r
			}
		}
		if rank < 0 {
			return v, false
		}
		d, rest = digits(rest[i:])
		v.suffixes = append(v.suffixes, suffix{rank: rank, num: d})
	}
	if strings.HasPrefix(rest, "-r") {
		d, rest = digits(rest[2:])
		if d == "" || len(d) > 18 {
			return v, false
		}
		var n int64
		for i := 0; i < len(d); i++ {
			n = n*10 + int64(d[i]-'0')
		}
		v.rev = n
	}
	return v, rest == ""
}

func validVersion(s string) bool {
	_, ok := parseVersion(s)
	return ok
}

// compareNum compares numeric components: numerically, except that a
// later component with a leading zero compares as a decimal fraction
// (apk-tools' DIGIT_OR_ZERO), i.e. as a string.
func compareNum(a, b string, first bool) int {
	if !first && ((len(a) > 1 && a[0] == '0') || (len(b) > 1 && b[0] == '0')) {
		return strings.Compare(a, b)
	}
	a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
	if len(a) != len(b) {
		if len(a) < len(b) {
			return -1
		}
		return 1
	}
	return strings.Compare(a, b)
}

// compareVersions returns -1, 0 or 1. Versions that do not parse compare
// as plain strings, after every valid version.
func compareVersions(a, b string) int {
	va, oka := parseVersion(a)
	vb, okb := parseVersion(b)
	switch {
	case !oka && !okb:
		return strings.Compare(a, b)
	case !oka:
		return 1
	case !okb:
		return -1
	}
	for i := 0; i < len(va.nums) && i < len(vb.nums); i++ {
		if c := compareNum(va.nums[i], vb.nums[i], i == 0); c != 0 {
			return c
		}
	}
	if len(va.nums) != len(vb.nums) {
		if len(va.nums) > len(vb.nums) {
			return 1
		}
		return -1
	}
	if va.letter != vb.letter {
		if va.letter > vb.letter {
			return 1
		}
		return -1
	}
	for i := 0; i < len(va.suffixes) && i < len(vb.suffixes); i++ {
		sa, sb := va.suffixes[i], vb.suffixes[i]
		if sa.rank != sb.rank {
			if sa.rank > sb.rank {
				return 1
			}
			return -1
		}
		if c := compareNum(sa.num, sb.num, true); c != 0 {
			return c
		}
	}
	if len(va.suffixes) != len(vb.suffixes) {
		// The version with an extra suffix is older if it is a pre-release.
		if len(va.suffixes) > len(vb.suffixes) {
			if va.suffixes[len(vb.suffixes)].rank < releaseRank {
				return -1
			}
			return 1
		}
		if vb.suffixes[len(va.suffixes)].rank < releaseRank {
			return 1
		}
		return -1
	}
	switch {
	case va.rev > vb.rev:
		return 1
	case va.rev < vb.rev:
		return -1
	}
	return 0
}

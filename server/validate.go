package server

import (
	"encoding/hex"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/vouchdev/vouch/apk"
	vouchv1 "github.com/vouchdev/vouch/proto/vouch/v1"
)

// Limits bound what one request may ask. Zero fields take the defaults.
type Limits struct {
	// MaxPackages per VerifyPackages request. Default 10,000.
	MaxPackages int
	// MaxControlBytes per raw control member. Default 64 KiB.
	MaxControlBytes int
	// MaxRequestBytes per gRPC message. Default 32 MiB.
	MaxRequestBytes int
	// MaxSubjects per request. Default 64.
	MaxSubjects int
	// MaxInFlight bounds the VerifyPackages calls being worked on at once.
	// A call over it waits up to QueueTimeout for a slot, then fails with
	// ResourceExhausted (overload is refused early and explicitly, rather
	// than queued until the caller's deadline). Default 64.
	MaxInFlight int
	// QueueTimeout is how long a call waits for a slot. Default 1s.
	QueueTimeout time.Duration
}

func (l Limits) withDefaults() Limits {
	if l.MaxPackages <= 0 {
		l.MaxPackages = 10_000
	}
	if l.MaxControlBytes <= 0 {
		l.MaxControlBytes = 64 << 10
	}
	if l.MaxRequestBytes <= 0 {
		l.MaxRequestBytes = 32 << 20
	}
	if l.MaxSubjects <= 0 {
		l.MaxSubjects = 64
	}
	if l.MaxInFlight <= 0 {
		l.MaxInFlight = 64
	}
	if l.QueueTimeout <= 0 {
		l.QueueTimeout = time.Second
	}
	return l
}

const (
	maxNameLen     = 256
	maxVersionLen  = 128
	maxURLLen      = 2048
	maxSubjectName = 1024
	maxReasonLen   = 1024
	maxClockSkew   = 5 * time.Minute
)

var (
	digestAlg = regexp.MustCompile(`^[a-z0-9-]{1,32}$`)
)

// claim is a validated PackageClaim with its parsed checksum.
type claim struct {
	*vouchv1.PackageClaim
	sum apk.Checksum
}

// validateVerify checks a VerifyPackagesRequest field by field and returns
// the parsed claims. The first problem is returned as a *FieldError naming
// the field, the value and what was expected.
func validateVerify(req *vouchv1.VerifyPackagesRequest, lim Limits, now time.Time) ([]claim, error) {
	n := len(req.GetPackages())
	switch {
	case n == 0:
		return nil, fieldErr("packages", "", "at least one package claim is required")
	case n > lim.MaxPackages:
		return nil, fieldErr("packages", fmt.Sprint(n), fmt.Sprintf("at most %d package claims per request", lim.MaxPackages))
	}
	attest := req.GetOptions().GetAttest()
	if attest && len(req.GetSubjects()) == 0 {
		return nil, fieldErr("subjects", "", "at least one subject is required when options.attest is set")
	}
	if err := validateSubjects(req.GetSubjects(), lim); err != nil {
		return nil, err
	}
	if t := req.GetOptions().GetTime(); t != nil {
		if err := t.CheckValid(); err != nil {
			return nil, fieldErr("options.time", t.String(), "a valid timestamp")
		}
		at := t.AsTime()
		if at.After(now.Add(maxClockSkew)) {
			return nil, fieldErr("options.time", at.Format(time.RFC3339), "not in the future")
		}
		if at.Year() < 2000 {
			return nil, fieldErr("options.time", at.Format(time.RFC3339), "a time after 2000-01-01")
		}
	}
	claims := make([]claim, n)
	lastURL := "" // claims of one request mostly share their repository URL: parse it once
	for i, p := range req.GetPackages() {
		// f names the field; it runs only on the way to an error.
		f := func(name string) string { return fmt.Sprintf("packages[%d].%s", i, name) }
		if err := checkToken(p.GetName(), maxNameLen); err != nil {
			return nil, err.at(f("name"))
		}
		if err := checkToken(p.GetVersion(), maxVersionLen); err != nil {
			return nil, err.at(f("version"))
		}
		if !isArch(p.GetArch()) {
			return nil, fieldErr(f("arch"), p.GetArch(), "an architecture name such as x86_64 or aarch64 (the index's arch, not noarch)")
		}
		if p.GetArch() == "noarch" {
			return nil, fieldErr(f("arch"), p.GetArch(), "the arch of the index the package was installed from (noarch packages are listed under each arch)")
		}
		if u := p.GetRepository(); u != lastURL || u == "" {
			if err := checkURL(u); err != nil {
				return nil, err.at(f("repository"))
			}
			lastURL = u
		}
		sum, err := apk.ParseChecksum(p.GetChecksum())
		if err != nil {
			return nil, fieldErr(f("checksum"), p.GetChecksum(), "an APK identity checksum: Q1 + base64 SHA-1 (28 chars), or Q2/X1/X2")
		}
		if d := p.GetDatahash(); d != "" && !isSHA256Hex(d) {
			return nil, fieldErr(f("datahash"), d, "64 lower-case hex characters (SHA-256 of the data part)")
		}
		if c := p.GetControl(); len(c) > lim.MaxControlBytes {
			return nil, fieldErr(f("control"), fmt.Sprintf("%d bytes", len(c)), fmt.Sprintf("at most %d bytes", lim.MaxControlBytes))
		}
		claims[i] = claim{PackageClaim: p, sum: sum}
	}
	return claims, nil
}

func validateSubjects(subjects []*vouchv1.Subject, lim Limits) error {
	if len(subjects) > lim.MaxSubjects {
		return fieldErr("subjects", fmt.Sprint(len(subjects)), fmt.Sprintf("at most %d subjects", lim.MaxSubjects))
	}
	seen := map[string]int{}
	for i, s := range subjects {
		f := fmt.Sprintf("subjects[%d]", i)
		if len(s.GetName()) > maxSubjectName || !utf8Printable(s.GetName()) {
			return fieldErr(f+".name", s.GetName(), fmt.Sprintf("printable text of at most %d bytes", maxSubjectName))
		}
		d, ok := s.GetDigest()["sha256"]
		if !ok {
			return fieldErr(f+".digest", "", `a "sha256" digest is required`)
		}
		if !isSHA256Hex(d) {
			return fieldErr(f+`.digest["sha256"]`, d, "64 lower-case hex characters")
		}
		if len(s.GetDigest()) > 8 {
			return fieldErr(f+".digest", fmt.Sprint(len(s.GetDigest())), "at most 8 digests")
		}
		for alg, v := range s.GetDigest() {
			if !digestAlg.MatchString(alg) {
				return fieldErr(f+".digest", alg, "algorithm names of lower-case letters, digits and '-'")
			}
			if _, err := hex.DecodeString(v); err != nil || len(v) > 256 || v == "" {
				return fieldErr(fmt.Sprintf("%s.digest[%q]", f, alg), v, "lower-case hex")
			}
		}
		if j, dup := seen[d]; dup {
			return fieldErr(f+`.digest["sha256"]`, d, fmt.Sprintf("a digest not already given in subjects[%d]", j))
		}
		seen[d] = i
	}
	return nil
}

// badValue is a field's problem before the field is named (naming costs a
// Sprintf, which the valid path should not pay for).
type badValue struct{ value, expected string }

func (b *badValue) at(field string) *FieldError { return fieldErr(field, b.value, b.expected) }

// checkToken accepts non-empty printable ASCII without spaces, at most max bytes.
func checkToken(v string, max int) *badValue {
	if v == "" {
		return &badValue{v, "required"}
	}
	if len(v) > max || !printable(v) {
		return &badValue{v, fmt.Sprintf("printable ASCII without spaces, at most %d bytes", max)}
	}
	return nil
}

func checkURL(v string) *badValue {
	if v == "" {
		return &badValue{v, "required: the repository URL the package was installed from"}
	}
	u, err := url.Parse(v)
	if len(v) > maxURLLen || err != nil || (u.Scheme != "https" && u.Scheme != "http" && u.Scheme != "file") {
		return &badValue{v, fmt.Sprintf("an https, http or file URL of at most %d bytes", maxURLLen)}
	}
	return nil
}

// isSHA256Hex reports whether s is 64 lower-case hex digits.
func isSHA256Hex(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// isArch reports whether s is 1 to 32 of [a-z0-9_].
func isArch(s string) bool {
	if len(s) == 0 || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

func utf8Printable(s string) bool {
	return !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '\uFFFD' })
}

// checkReason validates an administrator's reason text.
func checkReason(field, v string) error {
	if strings.TrimSpace(v) == "" {
		return fieldErr(field, v, "required: say why")
	}
	if len(v) > maxReasonLen || !utf8Printable(v) {
		return fieldErr(field, v, fmt.Sprintf("printable text of at most %d bytes", maxReasonLen))
	}
	return nil
}

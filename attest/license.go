package attest

import (
	"strings"
)

// noAssertion is the SPDX 2.3 value for "no attempt was made to determine"
// (SPDX 2.3 clause 7.13, 7.15).
const noAssertion = "NOASSERTION"

// knownLicenses maps the lower-cased form of the SPDX License List
// identifiers that APK repositories commonly use to their canonical case.
// SPDX identifiers are matched case-insensitively (SPDX 2.3 Annex D.2), so an
// index `L:` of "mit" becomes "MIT". The list is deliberately a curated
// subset: an identifier outside it is not guessed at (see spdxLicense).
var knownLicenses = func() map[string]string {
	ids := []string{
		"0BSD", "AFL-2.1", "AFL-3.0", "AGPL-3.0", "AGPL-3.0-only", "AGPL-3.0-or-later",
		"Apache-1.1", "Apache-2.0", "APSL-2.0", "Artistic-1.0", "Artistic-1.0-Perl",
		"Artistic-2.0", "Beerware", "BSD-1-Clause", "BSD-2-Clause", "BSD-2-Clause-Patent",
		"BSD-3-Clause", "BSD-3-Clause-Clear", "BSD-4-Clause", "BSL-1.0", "bzip2-1.0.6",
		"CC-BY-3.0", "CC-BY-4.0", "CC-BY-SA-3.0", "CC-BY-SA-4.0", "CC0-1.0", "CDDL-1.0",
		"CDDL-1.1", "copyleft-next-0.3.1", "curl", "EPL-1.0", "EPL-2.0", "EUPL-1.2",
		"FSFAP", "FSFUL", "FSFULLR", "FTL", "GFDL-1.3", "GFDL-1.3-only",
		"GFDL-1.3-or-later", "GPL-1.0", "GPL-1.0-only", "GPL-1.0-or-later", "GPL-2.0",
		"GPL-2.0-only", "GPL-2.0-or-later", "GPL-3.0", "GPL-3.0-only", "GPL-3.0-or-later",
		"HPND", "ICU", "IJG", "ISC", "LGPL-2.0", "LGPL-2.0-only", "LGPL-2.0-or-later",
		"LGPL-2.1", "LGPL-2.1-only", "LGPL-2.1-or-later", "LGPL-3.0", "LGPL-3.0-only",
		"LGPL-3.0-or-later", "Libpng", "libpng-2.0", "libtiff", "LPPL-1.3c", "MIT",
		"MIT-0", "MIT-CMU", "MPL-1.1", "MPL-2.0", "MPL-2.0-no-copyleft-exception",
		"NCSA", "OFL-1.1", "OLDAP-2.8", "OpenSSL", "PHP-3.01", "PostgreSQL", "PSF-2.0",
		"Python-2.0", "Python-2.0.1", "Ruby", "SGI-B-2.0", "Sleepycat", "SMLNJ",
		"TCL", "Unicode-3.0", "Unicode-DFS-2015", "Unicode-DFS-2016", "Unlicense",
		"UPL-1.0", "Vim", "W3C", "WTFPL", "X11", "XFree86-1.1", "Zlib", "ZPL-2.1",
		"blessing", "MirOS", "BSD-Source-Code", "Info-ZIP", "Spencer-94", "NTP",
		"GPL-2.0-with-classpath-exception",
	}
	m := make(map[string]string, len(ids))
	for _, id := range ids {
		m[strings.ToLower(id)] = id
	}
	return m
}()

// knownExceptions are SPDX License Exception identifiers accepted after WITH.
var knownExceptions = func() map[string]string {
	ids := []string{
		"Autoconf-exception-2.0", "Autoconf-exception-3.0", "Bison-exception-2.2",
		"Classpath-exception-2.0", "Font-exception-2.0", "GCC-exception-2.0",
		"GCC-exception-3.1", "Libtool-exception", "Linux-syscall-note", "LLVM-exception",
		"OpenSSL-exception", "Qt-LGPL-exception-1.1", "Universal-FOSS-exception-1.0",
		"WxWindows-exception-3.1", "x11vnc-openssl-exception",
	}
	m := make(map[string]string, len(ids))
	for _, id := range ids {
		m[strings.ToLower(id)] = id
	}
	return m
}()

// spdxLicense maps an APK index `L:` value to an SPDX 2.3 license expression
// (SPDX 2.3 Annex D). It returns the normalised expression and true when the
// value is a well-formed expression over known identifiers: operators AND,
// OR and WITH in any case (written upper-case), parentheses, and identifiers
// matched case-insensitively with an optional "+" suffix. Anything else —
// an empty value, free text such as "custom" or "BSD", unknown identifiers,
// LicenseRef- references (the index carries no text for them) — returns
// NOASSERTION and false; the caller keeps the raw value in licenseComments so
// nothing is lost.
func spdxLicense(raw string) (string, bool) {
	toks, ok := licenseTokens(raw)
	if !ok || len(toks) == 0 {
		return noAssertion, false
	}
	p := licenseParser{toks: toks}
	out, ok := p.expr()
	if !ok || p.pos != len(p.toks) {
		return noAssertion, false
	}
	return out, true
}

func licenseTokens(s string) ([]string, bool) {
	var toks []string
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			i++
		case c == '(' || c == ')':
			toks = append(toks, string(c))
			i++
		case isLicenseIDChar(c) || c == '+':
			j := i
			for j < len(s) && (isLicenseIDChar(s[j]) || s[j] == '+') {
				j++
			}
			toks = append(toks, s[i:j])
			i = j
		default:
			return nil, false
		}
	}
	return toks, true
}

func isLicenseIDChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-'
}

// licenseParser is a recursive-descent parser for the SPDX 2.3 Annex D
// grammar restricted as documented on spdxLicense. WITH binds tighter than
// AND, which binds tighter than OR (Annex D.4); the output keeps the
// original grouping, so precedence only matters for validation.
type licenseParser struct {
	toks []string
	pos  int
}

func (p *licenseParser) peek() string {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return ""
}

func (p *licenseParser) expr() (string, bool) {
	left, ok := p.term()
	if !ok {
		return "", false
	}
	for {
		op := strings.ToUpper(p.peek())
		if op != "AND" && op != "OR" {
			return left, true
		}
		p.pos++
		right, ok := p.term()
		if !ok {
			return "", false
		}
		left = left + " " + op + " " + right
	}
}

func (p *licenseParser) term() (string, bool) {
	tok := p.peek()
	if tok == "(" {
		p.pos++
		inner, ok := p.expr()
		if !ok || p.peek() != ")" {
			return "", false
		}
		p.pos++
		return "(" + inner + ")", true
	}
	id, ok := p.simple()
	if !ok {
		return "", false
	}
	if strings.EqualFold(p.peek(), "WITH") {
		p.pos++
		exc, ok := knownExceptions[strings.ToLower(p.peek())]
		if !ok {
			return "", false
		}
		p.pos++
		return id + " WITH " + exc, true
	}
	return id, true
}

func (p *licenseParser) simple() (string, bool) {
	tok := p.peek()
	switch strings.ToUpper(tok) {
	case "", "(", ")", "AND", "OR", "WITH":
		return "", false
	}
	plus := ""
	if strings.HasSuffix(tok, "+") {
		tok, plus = strings.TrimSuffix(tok, "+"), "+"
	}
	if strings.Contains(tok, "+") {
		return "", false
	}
	id, ok := knownLicenses[strings.ToLower(tok)]
	if !ok {
		return "", false
	}
	p.pos++
	return id + plus, true
}

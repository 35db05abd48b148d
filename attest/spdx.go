package attest

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/bits"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx"
	"github.com/spdx/tools-golang/spdx/v2/common"
	"github.com/spdx/tools-golang/spdxlib"

	"github.com/vouchdev/vouch/apk"
)

// PredicateTypeSPDX is the in-toto predicate type of an SPDX document; cosign
// maps `--type spdxjson` to it.
const PredicateTypeSPDX = "https://spdx.dev/Document"

// spdxTime is the SPDX 2.3 timestamp layout (clause 6.9: YYYY-MM-DDThh:mm:ssZ).
const spdxTime = "2006-01-02T15:04:05Z"

// subjectSPDXID is the SPDX id of the package that stands for the subject.
const subjectSPDXID = "Subject"

// Evidence annotation written on every SPDX package (SPDX 2.3 clause 12,
// annotationType OTHER). Its comment is this struct as compact JSON; the
// field names are part of vouch's documented format.
type evidenceAnnotation struct {
	Type        string `json:"type"` // always "vouch.evidence/v1"
	Repository  string `json:"repository"`
	IndexURL    string `json:"indexUrl"`
	IndexSHA256 string `json:"indexSha256"`
	SigningKey  string `json:"signingKey"`
	FetchedAt   string `json:"fetchedAt"`
	Match       Match  `json:"match"`
	Checksum    string `json:"checksum"`
	DataHash    string `json:"datahash,omitempty"`
	Origin      string `json:"origin,omitempty"`
}

// appendJSON appends e as compact JSON, exactly as encoding/json (without
// HTML escaping) would write it; written by hand because this runs once per
// package (TestEvidenceJSON checks the equivalence).
func (e evidenceAnnotation) appendJSON(b []byte) []byte {
	field := func(b []byte, first bool, name, v string) []byte {
		if !first {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, name...)
		b = append(b, '"', ':')
		return appendJSONString(b, v)
	}
	b = append(b, '{')
	b = field(b, true, "type", e.Type)
	b = field(b, false, "repository", e.Repository)
	b = field(b, false, "indexUrl", e.IndexURL)
	b = field(b, false, "indexSha256", e.IndexSHA256)
	b = field(b, false, "signingKey", e.SigningKey)
	b = field(b, false, "fetchedAt", e.FetchedAt)
	b = field(b, false, "match", string(e.Match))
	b = field(b, false, "checksum", e.Checksum)
	if e.DataHash != "" {
		b = field(b, false, "datahash", e.DataHash)
	}
	if e.Origin != "" {
		b = field(b, false, "origin", e.Origin)
	}
	return append(b, '}')
}

// appendJSONString appends s as a JSON string (RFC 8259 §7) the way
// encoding/json does with HTML escaping off: '"' and '\\' escaped, control
// characters as \n, \r, \t, \b, \f or \u00XX, U+2028 and U+2029 as \u2028 and
// \u2029, invalid UTF-8 replaced by \ufffd.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	b = appendJSONChars(b, s)
	return append(b, '"')
}

// appendJSONChars appends s escaped as in appendJSONString, without the
// quotes. Escaping two strings one after the other gives the escaping of
// their concatenation when the first ends in ASCII or the second starts
// with it (no UTF-8 sequence can span the cut).
func appendJSONChars(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	start := 0
	for i := 0; i < len(s); {
		if i+8 <= len(s) {
			w := s[i : i+8]
			x := uint64(w[0]) | uint64(w[1])<<8 | uint64(w[2])<<16 | uint64(w[3])<<24 |
				uint64(w[4])<<32 | uint64(w[5])<<40 | uint64(w[6])<<48 | uint64(w[7])<<56
			m := jsonSpecial8(x)
			if m == 0 {
				i += 8
				continue
			}
			i += bits.TrailingZeros64(m) >> 3 // the first byte to escape
		}
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(b, s[start:]...)
}

// jsonSpecial8 flags, in the top bit of each byte of the result, the bytes
// of x (eight string bytes, little-endian) that are not plain ASCII in a
// JSON string: control characters, '"', '\\' and bytes from 0x80. It tests
// the eight at once with the "haszero"/"hasless" bit tricks: a byte below n
// leaves its top bit set in (x - n) &^ x. A borrow can wrongly flag bytes
// above a flagged one, never below, so the lowest flag is the first byte to
// escape; 0 means all eight are plain.
func jsonSpecial8(x uint64) uint64 {
	const (
		lsb = 0x0101010101010101
		msb = 0x8080808080808080
	)
	q := x ^ ('"' * lsb)   // zero bytes where x has '"'
	bs := x ^ ('\\' * lsb) // zero bytes where x has '\\'
	return (x | (x-0x20*lsb)&^x | (q-lsb)&^q | (bs-lsb)&^bs) & msb
}

// evidenceAnnotationType is evidenceAnnotation.Type.
const evidenceAnnotationType = "vouch.evidence/v1"

// prepared is a validated package with what every writer needs from it
// computed once.
type prepared struct {
	*Package
	spdxID   string // without the "SPDXRef-" prefix
	checksum string // canonical C: form (Q1…/Q2…)
}

// sortedPackages validates in and returns its packages sorted by name,
// version, arch, checksum and repository, so that output never depends on
// the order a builder listed them. It refuses a package listed twice.
func sortedPackages(in *Input) ([]prepared, error) {
	if err := in.validate(); err != nil {
		return nil, err
	}
	pkgs := make([]prepared, len(in.Packages))
	for i := range in.Packages {
		p := &in.Packages[i]
		pkgs[i] = prepared{Package: p, spdxID: packageSPDXID(p), checksum: p.Checksum.String()}
	}
	slices.SortFunc(pkgs, func(a, b prepared) int {
		return cmp.Or(
			cmp.Compare(a.Name, b.Name),
			cmp.Compare(a.Version, b.Version),
			cmp.Compare(a.Arch, b.Arch),
			bytes.Compare(a.Checksum.Digest, b.Checksum.Digest),
			cmp.Compare(a.Repository.Name, b.Repository.Name),
		)
	})
	seen := make(map[string]struct{}, len(pkgs))
	for _, p := range pkgs {
		if _, dup := seen[p.spdxID]; dup {
			return nil, invalid("package %s-%s (%s, %s) is listed twice", p.Name, p.Version, p.Arch, p.checksum)
		}
		seen[p.spdxID] = struct{}{}
	}
	return pkgs, nil
}

// packageSPDXID is the deterministic SPDX element id of a package (SPDX 2.3
// clause 7.2: "SPDXRef-" then letters, digits, "." and "-"). The checksum
// prefix keeps ids unique when sanitising makes two names collide.
func packageSPDXID(p *Package) string {
	const prefix = "Package-apk-"
	var b strings.Builder // one allocation
	b.Grow(len(prefix) + len(p.Name) + len(p.Version) + len(p.Arch) + 3 + 16)
	b.WriteString(prefix)
	writeSPDXIDPart(&b, p.Name)
	b.WriteByte('-')
	writeSPDXIDPart(&b, p.Version)
	b.WriteByte('-')
	writeSPDXIDPart(&b, p.Arch)
	b.WriteByte('-')
	var h [16]byte
	hex.Encode(h[:], p.Checksum.Digest[:8]) // the first 16 hex digits
	b.Write(h[:])
	return b.String()
}

// writeSPDXIDPart writes s with every byte outside [A-Za-z0-9.-] as '-'.
func writeSPDXIDPart(b *strings.Builder, s string) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			c = '-'
		}
		b.WriteByte(c)
	}
}

// purl returns the package URL pkg:apk/<distro>/<name>@<version>?arch=<arch>
// (purl specification, type "apk"; components percent-encoded).
func purl(p *Package) string {
	var b strings.Builder // one allocation unless escaping makes it longer
	b.Grow(len("pkg:apk/") + len(p.Repository.Distro) + len(p.Name) + len(p.Version) + len(p.Arch) + len("/@?arch=") + 8)
	b.WriteString("pkg:apk/")
	writePurlEscaped(&b, strings.ToLower(p.Repository.Distro))
	b.WriteByte('/')
	writePurlEscaped(&b, strings.ToLower(p.Name))
	b.WriteByte('@')
	writePurlEscaped(&b, p.Version)
	b.WriteString("?arch=")
	writePurlEscaped(&b, p.Arch)
	return b.String()
}

// purlEscape percent-encodes everything but the purl "unreserved" set.
func purlEscape(s string) string {
	var b strings.Builder
	writePurlEscaped(&b, s)
	return b.String()
}

func writePurlEscaped(b *strings.Builder, s string) {
	const hexDigits = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
}

// downloadLocation is <repository URL>/<arch>/<name>-<version>.apk, the
// layout apk uses to fetch a package, or NOASSERTION without a URL
// (SPDX 2.3 clause 7.7).
func downloadLocation(p *Package) string {
	if p.Repository.URL == "" {
		return noAssertion
	}
	return strings.TrimRight(p.Repository.URL, "/") + "/" + p.Arch + "/" + p.Name + "-" + p.Version + ".apk"
}

// supplier maps the configured supplier to SPDX 2.3 clause 7.5:
// "Organization: x", "Person: x" or NOASSERTION.
// CheckSupplier reports whether s is a supplier vouch can write into SPDX:
// empty or NOASSERTION, "Organization: <name>", "Person: <name>", or a bare
// name (an organization). A type without a name is refused: SPDX writers
// cannot encode it.
func CheckSupplier(s string) error {
	if sup := supplier(s); sup.Supplier == "" {
		return fmt.Errorf("supplier %q names a type but no supplier", s)
	}
	return nil
}

func supplier(s string) *common.Supplier {
	s = strings.TrimSpace(s)
	if s == "" || s == noAssertion {
		return &common.Supplier{Supplier: noAssertion}
	}
	for _, typ := range []string{"Organization", "Person"} {
		if rest, ok := strings.CutPrefix(s, typ+":"); ok {
			return &common.Supplier{SupplierType: typ, Supplier: strings.TrimSpace(rest)}
		}
	}
	return &common.Supplier{SupplierType: "Organization", Supplier: s}
}

// BuildSPDX returns the SPDX 2.3 document for in: one package for the
// subject, described by the document, which CONTAINS one package per APK.
// The document is validated with spdxlib and vouch's own checks. It is
// deterministic for equal input and time t (t is the creation time).
func BuildSPDX(in *Input, t time.Time) (*spdx.Document, error) {
	pkgs, err := sortedPackages(in)
	if err != nil {
		return nil, err
	}
	return buildSPDX(in, pkgs, t)
}

func buildSPDX(in *Input, pkgs []prepared, t time.Time) (*spdx.Document, error) {
	created := t.UTC().Format(spdxTime)
	tool := "vouch-" + in.Verifier.Version
	subjectDigest := in.Subject.Digest["sha256"]

	doc := &spdx.Document{
		SPDXVersion:       spdx.Version,
		DataLicense:       spdx.DataLicense,
		SPDXIdentifier:    "DOCUMENT",
		DocumentName:      in.Subject.Name,
		DocumentNamespace: documentNamespace(in, pkgs),
		CreationInfo: &spdx.CreationInfo{
			Creators: []common.Creator{{CreatorType: "Tool", Creator: tool}},
			Created:  created,
		},
		Packages:      make([]*spdx.Package, 0, len(pkgs)+1),
		Relationships: make([]*spdx.Relationship, 0, len(pkgs)+1),
	}

	// The subject itself (SPDX 2.3 clause 7): its digest is what every
	// verifier matches.
	subjectChecksums := []common.Checksum{{Algorithm: common.SHA256, Value: subjectDigest}}
	doc.Packages = append(doc.Packages, &spdx.Package{
		PackageName:               in.Subject.Name,
		PackageSPDXIdentifier:     subjectSPDXID,
		PackageVersion:            "sha256:" + subjectDigest,
		PackageDownloadLocation:   noAssertion,
		FilesAnalyzed:             false,
		IsFilesAnalyzedTagPresent: true,
		PackageChecksums:          subjectChecksums,
		PackageLicenseConcluded:   noAssertion,
		PackageLicenseDeclared:    noAssertion,
		PackageCopyrightText:      noAssertion,
	})
	// SPDX 2.3 clause 11.1: DOCUMENT DESCRIBES the subject.
	doc.Relationships = append(doc.Relationships, &spdx.Relationship{
		RefA:         common.MakeDocElementID("", "DOCUMENT"),
		RefB:         common.MakeDocElementID("", subjectSPDXID),
		Relationship: common.TypeRelationshipDescribe,
	})

	licenses := make(map[string]packageLicense) // packages share a few L: values
	for i := range pkgs {
		sp := spdxPackage(&pkgs[i], tool, created, licenses)
		doc.Packages = append(doc.Packages, sp)
		// SPDX 2.3 clause 11.1: the subject CONTAINS each package.
		doc.Relationships = append(doc.Relationships, &spdx.Relationship{
			RefA:         common.MakeDocElementID("", subjectSPDXID),
			RefB:         common.MakeDocElementID("", string(sp.PackageSPDXIdentifier)),
			Relationship: common.TypeRelationshipContains,
		})
	}

	if err := spdxlib.ValidateDocument(doc); err != nil {
		return nil, fmt.Errorf("validating SPDX document: %w", err)
	}
	return doc, nil
}

// packageLicense is what an APK index L: value maps to in SPDX.
type packageLicense struct {
	declared string // licenseDeclared
	comment  string // licenseComments: the raw value when it does not map
}

// mapLicense maps an L: value (spdxLicense), keeping the raw value in a
// comment when it is not an SPDX expression.
func mapLicense(raw string) packageLicense {
	declared, ok := spdxLicense(raw)
	l := packageLicense{declared: declared}
	if !ok && raw != "" {
		l.comment = "APK index license (L:) " + raw + " is not a recognised SPDX license expression"
	}
	return l
}

// spdxPackage returns the SPDX package of p. licenses, when not nil,
// memoises mapLicense across the packages of a document.
func spdxPackage(p *prepared, tool, created string, licenses map[string]packageLicense) *spdx.Package {
	var checksums []common.Checksum
	switch p.Checksum.Alg {
	case apk.ChecksumSHA1:
		// The index C: (SHA-1 of the control member) as hex, as apko does.
		checksums = append(checksums, common.Checksum{Algorithm: common.SHA1, Value: p.Checksum.Hex()})
		if p.DataHash != "" {
			checksums = append(checksums, common.Checksum{Algorithm: common.SHA256, Value: p.DataHash})
		}
	case apk.ChecksumSHA256:
		// apk-tools 3 identity: the C: is itself SHA-256 and takes the one
		// SHA256 slot; the datahash stays in the evidence annotation.
		checksums = append(checksums, common.Checksum{Algorithm: common.SHA256, Value: p.Checksum.Hex()})
	}

	license, seen := licenses[p.License]
	if !seen {
		license = mapLicense(p.License)
		if licenses != nil {
			licenses[p.License] = license
		}
	}

	ev := evidenceAnnotation{
		Type:        evidenceAnnotationType,
		Repository:  p.Repository.Name,
		IndexURL:    p.Evidence.IndexURL,
		IndexSHA256: p.Evidence.IndexSHA256,
		SigningKey:  p.Evidence.SigningKey,
		FetchedAt:   p.Evidence.FetchedAt.UTC().Format(time.RFC3339),
		Match:       p.Evidence.Match,
		Checksum:    p.checksum,
		DataHash:    p.DataHash,
		Origin:      p.Origin,
	}.appendJSON(make([]byte, 0, 512))

	var sourceInfo string
	if p.Origin != "" {
		sourceInfo = "built from APK origin package " + p.Origin
	}

	return &spdx.Package{
		PackageName:               p.Name,
		PackageSPDXIdentifier:     common.ElementID(p.spdxID),
		PackageVersion:            p.Version,
		PackageFileName:           p.Name + "-" + p.Version + ".apk",
		PackageSupplier:           supplier(p.Repository.Supplier),
		PackageDownloadLocation:   downloadLocation(p.Package),
		FilesAnalyzed:             false,
		IsFilesAnalyzedTagPresent: true,
		PackageChecksums:          checksums,
		PackageSourceInfo:         sourceInfo,
		PackageLicenseConcluded:   noAssertion,
		PackageLicenseDeclared:    license.declared,
		PackageLicenseComments:    license.comment,
		PackageCopyrightText:      noAssertion,
		// SPDX 2.3 clause 7.21 and Annex F: the purl as a PACKAGE-MANAGER reference.
		PackageExternalReferences: []*spdx.PackageExternalReference{{
			Category: common.CategoryPackageManager,
			RefType:  common.TypePackageManagerPURL,
			Locator:  purl(p.Package),
		}},
		// SPDX 2.3 clause 12: the evidence as an annotation nested in the
		// package, which JSON readers keep with the package.
		Annotations: []spdx.Annotation{{
			Annotator:                common.Annotator{AnnotatorType: "Tool", Annotator: tool},
			AnnotationDate:           created,
			AnnotationType:           "OTHER",
			AnnotationSPDXIdentifier: common.MakeDocElementID("", p.spdxID),
			AnnotationComment:        string(ev),
		}},
	}
}

// documentNamespace is unique per subject and package set and stable for
// equal input (SPDX 2.3 clause 6.5): <verifier id>/spdx/<subject
// sha256>-<first 16 hex of the SHA-256 over the sorted package identities>.
func documentNamespace(in *Input, pkgs []prepared) string {
	h := sha256.New()
	var line []byte
	for _, p := range pkgs {
		line = line[:0]
		for _, f := range [...]string{p.Repository.Name, p.Name, p.Version, p.Arch, p.checksum, p.DataHash, p.Evidence.IndexSHA256} {
			line = append(line, f...)
			line = append(line, 0)
		}
		line[len(line)-1] = '\n'
		h.Write(line)
	}
	return strings.TrimRight(in.Verifier.id(), "/") + "/spdx/" + in.Subject.Digest["sha256"] + "-" + hex.EncodeToString(h.Sum(nil))[:16]
}

// marshalSPDX writes doc as SPDX JSON as tools-golang writes it, without
// HTML escaping (so "&" in purl qualifiers stays "&"), and without the
// trailing newline the encoder adds. vouch's documents take the hand-written
// encoder (appendSPDXJSON, same bytes); anything else takes tools-golang.
func marshalSPDX(doc *spdx.Document) ([]byte, error) {
	size := spdxSizeHint(doc)
	if b, ok := appendSPDXJSON(make([]byte, 0, size), doc); ok {
		return b, nil
	}
	return marshalSPDXToolsGolang(doc, size)
}

// spdxSizeHint is about the size of doc's JSON: one allocation, not a
// dozen.
func spdxSizeHint(doc *spdx.Document) int {
	return 4096 + 1600*len(doc.Packages) // about what a package takes
}

// marshalSPDXStatement is marshalStatement(subject, PredicateTypeSPDX,
// marshalSPDX(doc)), with the predicate written straight into the statement
// rather than copied there.
func marshalSPDXStatement(subject Subject, doc *spdx.Document) (signable, error) {
	size := spdxSizeHint(doc)
	b, err := statementHead(subject, PredicateTypeSPDX, size)
	if err != nil {
		return signable{}, err
	}
	if b, ok := appendSPDXJSON(b, doc); ok {
		return signable{append(b, '}')}, nil
	}
	pred, err := marshalSPDX(doc) // tools-golang, in the end
	if err != nil {
		return signable{}, err
	}
	return marshalStatement(subject, PredicateTypeSPDX, pred)
}

// marshalSPDXToolsGolang is marshalSPDX with tools-golang's encoder.
func marshalSPDXToolsGolang(doc *spdx.Document, size int) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(size)
	if err := spdxjson.Write(doc, &buf, spdxjson.EscapeHTML(false)); err != nil {
		return nil, fmt.Errorf("writing SPDX JSON: %w", err)
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

package attest

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx"
	"github.com/spdx/tools-golang/spdx/v2/common"

	"github.com/vouchdev/vouch/apk"
	"github.com/vouchdev/vouch/internal/testtools"
)

// toolsGolangSPDX is the reference: what tools-golang writes for doc, HTML
// escaping off, without the trailing newline.
func toolsGolangSPDX(t testing.TB, doc *spdx.Document) ([]byte, error) {
	t.Helper()
	var buf bytes.Buffer
	if err := spdxjson.Write(doc, &buf, spdxjson.EscapeHTML(false)); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// checkSPDXJSON asserts that appendSPDXJSON writes doc exactly as
// tools-golang does and handles it (wantOK) or hands it over, and that
// marshalSPDX returns tools-golang's bytes (or fails where it fails) either
// way.
func checkSPDXJSON(t testing.TB, doc *spdx.Document, wantOK bool) {
	t.Helper()
	want, wantErr := toolsGolangSPDX(t, doc)
	prefix := []byte("prefix")
	got, ok := appendSPDXJSON(prefix[:len(prefix):len(prefix)], doc)
	if ok != wantOK {
		t.Fatalf("appendSPDXJSON ok = %v; want %v (tools-golang error: %v)", ok, wantOK, wantErr)
	}
	switch {
	case ok && wantErr != nil:
		t.Fatalf("appendSPDXJSON wrote a document tools-golang refuses (%v):\n%s", wantErr, got)
	case ok && !bytes.Equal(got[len(prefix):], want):
		t.Fatalf("appendSPDXJSON differs from tools-golang (-tools-golang +appendSPDXJSON):\n%s", cmp.Diff(string(want), string(got[len(prefix):])))
	case !ok && !bytes.Equal(got, prefix):
		t.Fatalf("appendSPDXJSON refused the document but returned %q; want the prefix unchanged", got)
	case ok && !bytes.HasPrefix(got, prefix):
		t.Fatalf("appendSPDXJSON lost the bytes before it: %q", got[:min(len(got), 20)])
	}
	m, err := marshalSPDX(doc)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("marshalSPDX error %v; tools-golang error %v", err, wantErr)
	}
	if err == nil && !bytes.Equal(m, want) {
		t.Fatalf("marshalSPDX differs from tools-golang (-tools-golang +marshalSPDX):\n%s", cmp.Diff(string(want), string(m)))
	}
}

// TestSPDXModelKnown fails when tools-golang's model changed under
// appendSPDXJSON (which then turns itself off): review the encoder against
// the new model and update spdxModelMismatch.
func TestSPDXModelKnown(t *testing.T) {
	if d := spdxModelMismatch(); d != "" {
		t.Fatalf("tools-golang's SPDX model is not the one appendSPDXJSON was written for: %s", d)
	}
}

// TestSPDXJSONMatchesToolsGolang compares the hand-written encoder with
// tools-golang on the documents the other tests and the goldens build.
func TestSPDXJSONMatchesToolsGolang(t *testing.T) {
	sha256Input := func() Input {
		in := testInput(12)
		c2, err := apk.ParseChecksum("X2" + hexOf("q2"))
		if err != nil {
			t.Fatal(err)
		}
		in.Packages[3].Checksum = c2
		in.Packages[4].Checksum = apk.Checksum{Alg: apk.ChecksumSHA256, Digest: bytes.Repeat([]byte{0xab}, 32)}
		in.Packages[4].DataHash = ""
		return in
	}
	fieldsInput := func() Input {
		// The packages of TestSPDXFields: no URL, no supplier, Person
		// supplier, odd names, no license, no origin.
		in := testInput(1)
		base := in.Packages[0]
		for i, mod := range []func(p *Package){
			func(p *Package) { p.Name, p.Repository.Distro = "libstdc++", "Alpine" },
			func(p *Package) { p.Repository.Supplier = "Alpine Linux" },
			func(p *Package) { p.Repository.Supplier = "Person: Jane Doe (jane@example.com)" },
			func(p *Package) { p.Repository.Supplier = "" },
			func(p *Package) { p.Repository.Supplier = " NOASSERTION " },
			func(p *Package) { p.Repository.URL = "" },
			func(p *Package) { p.License = "" },
			func(p *Package) { p.License = "custom" },
			func(p *Package) { p.Origin, p.DataHash = "", "" },
			func(p *Package) { p.Name, p.Version, p.Arch = "a_b~c@d", "1.0_rc1-r0", "armv7" },
		} {
			p := base
			p.Name = fmt.Sprintf("%s-%d", p.Name, i)
			mod(&p)
			in.Packages = append(in.Packages, p)
		}
		return in
	}
	tests := []struct {
		name string
		in   func() Input
	}{
		{"golden (7 packages)", func() Input { return testInput(7) }},
		{"one package", func() Input { return testInput(1) }},
		{"12 packages", func() Input { return testInput(12) }},
		{"50 packages", func() Input { return testInput(50) }},
		{"SHA-256 checksums", sha256Input},
		{"field variants", fieldsInput},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in()
			doc, err := BuildSPDX(&in, testTime)
			if err != nil {
				t.Fatal(err)
			}
			checkSPDXJSON(t, doc, true)
		})
	}
}

// awkwardPieces are what random strings are made of: plain text and
// everything JSON escaping treats specially.
var awkwardPieces = []string{
	"a", "Z", "0", "-", ".", "/", ":", " ", "x y", "SPDXRef-", "NOASSERTION",
	`"`, `\`, "\x00", "\x01", "\x08", "\t", "\n", "\f", "\r", "\x1f", "\x7f",
	"<", ">", "&", "\u2028", "\u2029", "é", "世界", "🙂", "\ufffd",
	"\xff", "\xfe", "\xe2\x80", "\x80", "\xc3", "\xed\xa0\x80", // invalid UTF-8
}

func randomString(r *rand.Rand, maxPieces int) string {
	var b strings.Builder
	for range r.IntN(maxPieces + 1) {
		b.WriteString(awkwardPieces[r.IntN(len(awkwardPieces))])
	}
	return b.String()
}

// randomNonEmpty is randomString, never empty.
func randomNonEmpty(r *rand.Rand, maxPieces int) string {
	if s := randomString(r, maxPieces); s != "" {
		return s
	}
	return "x"
}

// randomNoSpace is randomNonEmpty without the whitespace the input
// validation refuses in names and URLs.
func randomNoSpace(r *rand.Rand, maxPieces int) string {
	s := strings.Map(func(c rune) rune {
		if strings.ContainsRune(" \t\r\n", c) {
			return '_'
		}
		return c
	}, randomNonEmpty(r, maxPieces))
	return s
}

// randomToken is a valid APK P:/V:/A: or distro token.
func randomToken(r *rand.Rand) string {
	const chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._+~@-"
	b := make([]byte, 1+r.IntN(12))
	for i := range b {
		b[i] = chars[r.IntN(len(chars))]
	}
	return string(b)
}

func randomHex(r *rand.Rand) string {
	b := make([]byte, 32)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return fmt.Sprintf("%x", b)
}

// randomInput is a valid Input with awkward strings wherever validation
// lets them through.
func randomInput(r *rand.Rand) Input {
	in := Input{
		Subject: Subject{
			Name:   randomNoSpace(r, 6),
			Digest: map[string]string{"sha256": randomHex(r)},
		},
		Verifier: Verifier{ID: randomString(r, 4), Version: randomNonEmpty(r, 4)},
		Policy:   Policy{URI: "https://vouch.example/policy", SHA256: randomHex(r)},
	}
	licenses := []string{
		"", "MIT", "mit", "GPL-2.0-or-later AND MIT", "(MIT OR Apache-2.0) AND BSD-3-Clause",
		"GPL-3.0-or-later WITH GCC-exception-3.1", "LGPL-2.1+", "custom", "BSD", "Public Domain",
		"MIT, BSD-3-Clause", "LicenseRef-x",
	}
	suppliers := []string{
		"", "NOASSERTION", "Organization: Wolfi", "Person: Jane <jane@example.com>", "Alpine Linux",
		"Organization:Chainguard, Inc.", "  padded  ",
	}
	for range 1 + r.IntN(6) {
		p := Package{
			Name:    randomToken(r),
			Version: randomToken(r),
			Arch:    randomToken(r),
			Repository: Repository{
				Name:   randomNonEmpty(r, 4),
				Distro: randomToken(r),
			},
			Evidence: Evidence{
				IndexURL:    randomNoSpace(r, 6),
				IndexSHA256: randomHex(r),
				SigningKey:  randomNonEmpty(r, 4),
				FetchedAt:   time.Unix(r.Int64N(4e9), 0),
				Match:       []Match{MatchCurrent, MatchHistory}[r.IntN(2)],
			},
		}
		if r.IntN(2) == 0 {
			d := make([]byte, 20)
			for i := range d {
				d[i] = byte(r.Uint32())
			}
			p.Checksum = apk.Checksum{Alg: apk.ChecksumSHA1, Digest: d}
		} else {
			d := make([]byte, 32)
			for i := range d {
				d[i] = byte(r.Uint32())
			}
			p.Checksum = apk.Checksum{Alg: apk.ChecksumSHA256, Digest: d}
		}
		if r.IntN(2) == 0 {
			p.DataHash = randomHex(r)
		}
		if r.IntN(2) == 0 {
			p.Origin = randomNonEmpty(r, 5)
		}
		switch r.IntN(3) {
		case 0:
			p.License = licenses[r.IntN(len(licenses))]
		case 1:
			p.License = randomString(r, 5)
		}
		switch r.IntN(3) {
		case 0:
			p.Repository.Supplier = suppliers[r.IntN(len(suppliers))]
		case 1:
			p.Repository.Supplier = randomString(r, 5)
		}
		if r.IntN(4) != 0 {
			p.Repository.URL = randomString(r, 6)
		}
		in.Packages = append(in.Packages, p)
	}
	return in
}

// mutateHandled changes doc in ways appendSPDXJSON still handles: values
// of the fields buildSPDX sets that buildSPDX itself never produces.
func mutateHandled(r *rand.Rand, doc *spdx.Document) {
	p := doc.Packages[r.IntN(len(doc.Packages))]
	switch r.IntN(12) {
	case 0:
		p.FilesAnalyzed = true
	case 1:
		p.PackageSPDXIdentifier = "SPDXRef-" + p.PackageSPDXIdentifier
	case 2:
		p.PackageVersion, p.PackageFileName, p.PackageSourceInfo = "", "", ""
	case 3:
		p.PackageChecksums = nil
	case 4:
		p.PackageExternalReferences = append(p.PackageExternalReferences, &spdx.PackageExternalReference{
			Category: "PACKAGE_MANAGER", RefType: randomString(r, 3), Locator: randomString(r, 5),
		})
	case 5:
		p.PackageSupplier = &common.Supplier{SupplierType: randomString(r, 2), Supplier: noAssertion}
	case 6:
		p.PackageSupplier = nil
	case 7:
		p.Annotations = append(p.Annotations, spdx.Annotation{
			Annotator:      common.Annotator{AnnotatorType: randomString(r, 2), Annotator: randomNonEmpty(r, 3)},
			AnnotationDate: randomString(r, 3), AnnotationType: "REVIEW", AnnotationComment: randomString(r, 8),
		})
	case 8:
		p.Annotations, p.PackageExternalReferences = nil, []*spdx.PackageExternalReference{}
	case 9:
		doc.CreationInfo.Creators = append(doc.CreationInfo.Creators, common.Creator{CreatorType: randomString(r, 2), Creator: randomNonEmpty(r, 3)})
	case 10:
		doc.Relationships = append(doc.Relationships, &spdx.Relationship{
			RefA: common.MakeDocElementID("", "SPDXRef-"+randomNonEmpty(r, 3)), RefB: common.MakeDocElementID("", randomNonEmpty(r, 3)),
			Relationship: randomString(r, 3),
		})
	case 11:
		p.PackageName, p.PackageDownloadLocation, p.PackageLicenseDeclared = randomString(r, 4), randomString(r, 4), ""
	}
}

// TestSPDXJSONRandom compares the hand-written encoder with tools-golang
// on documents built from random inputs full of awkward strings, and on
// the same documents changed in ways the encoder still handles.
func TestSPDXJSONRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(20261105, 1))
	const n = 400
	handled := 0
	for i := range n {
		in := randomInput(r)
		tm := time.Unix(r.Int64N(4e9), 0)
		doc, err := BuildSPDX(&in, tm)
		if err != nil {
			t.Fatalf("document %d: %v", i, err)
		}
		want, err := toolsGolangSPDX(t, doc)
		got, ok := appendSPDXJSON(nil, doc)
		if err != nil {
			// tools-golang refuses a few supplier forms buildSPDX makes
			// (e.g. "Person:" with no name); the fast path must too.
			if ok {
				t.Fatalf("document %d: tools-golang fails (%v) but appendSPDXJSON wrote it", i, err)
			}
			checkSPDXJSON(t, doc, false)
			continue
		}
		handled++
		if !ok || !bytes.Equal(got, want) {
			t.Fatalf("document %d (ok %v) differs from tools-golang (-tools-golang +appendSPDXJSON):\n%s", i, ok, cmp.Diff(string(want), string(got)))
		}
		for range 3 {
			mutateHandled(r, doc)
		}
		t.Run(fmt.Sprintf("mutated/%d", i), func(t *testing.T) { checkSPDXJSON(t, doc, true) })
	}
	if handled < n/2 {
		t.Errorf("only %d of %d random documents took the fast path", handled, n)
	}
}

// TestSPDXJSONFallback checks that a document using anything the encoder
// does not handle is refused, and that marshalSPDX then writes what
// tools-golang writes (or fails where it fails).
func TestSPDXJSONFallback(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(d *spdx.Document)
	}{
		{"file", func(d *spdx.Document) {
			d.Files = []*spdx.File{{FileName: "./f", FileSPDXIdentifier: "File-f", Checksums: []common.Checksum{{Algorithm: common.SHA1, Value: strings.Repeat("0", 40)}}}}
		}},
		{"package file", func(d *spdx.Document) {
			d.Packages[1].Files = []*spdx.File{{FileName: "./f", FileSPDXIdentifier: "File-f"}}
		}},
		{"document annotation", func(d *spdx.Document) {
			d.Annotations = []*spdx.Annotation{{Annotator: common.Annotator{AnnotatorType: "Tool", Annotator: "x"}, AnnotationDate: "2026-01-01T00:00:00Z", AnnotationType: "OTHER", AnnotationComment: "c"}}
		}},
		{"other license", func(d *spdx.Document) {
			d.OtherLicenses = []*spdx.OtherLicense{{LicenseIdentifier: "LicenseRef-x", ExtractedText: "text"}}
		}},
		{"external document reference", func(d *spdx.Document) {
			d.ExternalDocumentReferences = []spdx.ExternalDocumentRef{{DocumentRefID: "x", URI: "https://x", Checksum: common.Checksum{Algorithm: common.SHA1, Value: "00"}}}
		}},
		{"snippet", func(d *spdx.Document) { d.Snippets = []spdx.Snippet{{SnippetSPDXIdentifier: "s"}} }},
		{"review", func(d *spdx.Document) { d.Reviews = []*spdx.Review{{Reviewer: "r"}} }},
		{"document comment", func(d *spdx.Document) { d.DocumentComment = "c" }},
		{"license list version", func(d *spdx.Document) { d.CreationInfo.LicenseListVersion = "3.20" }},
		{"creator comment", func(d *spdx.Document) { d.CreationInfo.CreatorComment = "c" }},
		{"no creation info", func(d *spdx.Document) { d.CreationInfo = nil }},
		{"no creators", func(d *spdx.Document) { d.CreationInfo.Creators = nil }},
		{"empty creator", func(d *spdx.Document) { d.CreationInfo.Creators[0].Creator = "" }},
		{"nil package", func(d *spdx.Document) { d.Packages = append(d.Packages, nil) }},
		{"originator", func(d *spdx.Document) { d.Packages[1].PackageOriginator = &common.Originator{Originator: noAssertion} }},
		{"verification code", func(d *spdx.Document) {
			d.Packages[1].PackageVerificationCode = &common.PackageVerificationCode{Value: strings.Repeat("0", 40)}
		}},
		{"homepage", func(d *spdx.Document) { d.Packages[1].PackageHomePage = "https://x" }},
		{"license info from files", func(d *spdx.Document) { d.Packages[1].PackageLicenseInfoFromFiles = []string{"MIT"} }},
		{"summary", func(d *spdx.Document) { d.Packages[1].PackageSummary = "s" }},
		{"description", func(d *spdx.Document) { d.Packages[1].PackageDescription = "d" }},
		{"package comment", func(d *spdx.Document) { d.Packages[1].PackageComment = "c" }},
		{"attribution text", func(d *spdx.Document) { d.Packages[1].PackageAttributionTexts = []string{"a"} }},
		{"purpose", func(d *spdx.Document) { d.Packages[1].PrimaryPackagePurpose = "LIBRARY" }},
		{"release date", func(d *spdx.Document) { d.Packages[1].ReleaseDate = "2026-01-01T00:00:00Z" }},
		{"built date", func(d *spdx.Document) { d.Packages[1].BuiltDate = "2026-01-01T00:00:00Z" }},
		{"valid until", func(d *spdx.Document) { d.Packages[1].ValidUntilDate = "2026-01-01T00:00:00Z" }},
		{"supplier without type", func(d *spdx.Document) { d.Packages[1].PackageSupplier = &common.Supplier{Supplier: "x"} }},
		{"supplier without name", func(d *spdx.Document) {
			d.Packages[1].PackageSupplier = &common.Supplier{SupplierType: "Person"}
		}},
		{"nil external reference", func(d *spdx.Document) {
			d.Packages[1].PackageExternalReferences = append(d.Packages[1].PackageExternalReferences, nil)
		}},
		{"external reference comment", func(d *spdx.Document) { d.Packages[1].PackageExternalReferences[0].ExternalRefComment = "c" }},
		{"empty annotator", func(d *spdx.Document) { d.Packages[1].Annotations[0].Annotator.Annotator = "" }},
		{"nil relationship", func(d *spdx.Document) { d.Relationships = append(d.Relationships, nil) }},
		{"relationship comment", func(d *spdx.Document) { d.Relationships[0].RelationshipComment = "c" }},
		{"external element", func(d *spdx.Document) { d.Relationships[1].RefB = common.MakeDocElementID("other", "x") }},
		{"special element", func(d *spdx.Document) { d.Relationships[1].RefB = common.MakeDocElementSpecial("NONE") }},
		{"empty element", func(d *spdx.Document) { d.Relationships[1].RefB = common.DocElementID{} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := testInput(3)
			doc, err := BuildSPDX(&in, testTime)
			if err != nil {
				t.Fatal(err)
			}
			tt.mutate(doc)
			checkSPDXJSON(t, doc, false)
		})
	}
	t.Run("nil document", func(t *testing.T) {
		if b, ok := appendSPDXJSON([]byte("x"), nil); ok || string(b) != "x" {
			t.Errorf("appendSPDXJSON(nil) = %q, %v; want \"x\", false", b, ok)
		}
	})
}

// FuzzSPDXJSON compares the hand-written encoder with tools-golang on a
// built document whose string fields are set to fuzzed values.
func FuzzSPDXJSON(f *testing.F) {
	f.Add("libstdc++", "Organization", "Wolfi", "pkg:apk/wolfi/a@1?arch=x86_64&x=<y>", "a\"b\\c\x00é\xff\u2028")
	f.Add("", "", "NOASSERTION", "", "")
	f.Fuzz(func(t *testing.T, name, supplierType, supplierName, locator, comment string) {
		in := testInput(2)
		doc, err := BuildSPDX(&in, testTime)
		if err != nil {
			t.Fatal(err)
		}
		p := doc.Packages[1]
		p.PackageName, p.PackageVersion, p.PackageLicenseComments = name, comment, locator
		p.PackageSPDXIdentifier = common.ElementID(name)
		p.PackageSupplier = &common.Supplier{SupplierType: supplierType, Supplier: supplierName}
		p.PackageExternalReferences[0].Category, p.PackageExternalReferences[0].Locator = supplierType, locator
		p.Annotations[0].Annotator.AnnotatorType, p.Annotations[0].AnnotationComment = supplierName, comment
		doc.CreationInfo.Creators[0].CreatorType = supplierType
		doc.DocumentName = comment
		doc.Relationships[1].RefB = common.MakeDocElementID("", name)
		want, wantErr := toolsGolangSPDX(t, doc)
		got, ok := appendSPDXJSON(nil, doc)
		switch {
		case ok && wantErr != nil:
			t.Fatalf("tools-golang fails (%v) but appendSPDXJSON wrote it", wantErr)
		case ok && !bytes.Equal(got, want):
			t.Fatalf("differs from tools-golang (-tools-golang +appendSPDXJSON):\n%s", cmp.Diff(string(want), string(got)))
		case !ok && wantErr == nil && name != "" && (supplierName == noAssertion || supplierType != "" && supplierName != ""):
			t.Fatalf("appendSPDXJSON refused a document it handles")
		}
	})
}

// TestSPDXStatement: the SPDX statement written in one pass is the
// statement around marshalSPDX's predicate, on the fast path and on the
// fallback.
func TestSPDXStatement(t *testing.T) {
	for _, fallback := range []bool{false, true} {
		in := testInput(9)
		doc, err := BuildSPDX(&in, testTime)
		if err != nil {
			t.Fatal(err)
		}
		if fallback {
			doc.Packages[2].PackageHomePage = "https://example.com/<&>"
		}
		if _, ok := appendSPDXJSON(nil, doc); ok == fallback {
			t.Fatalf("fallback %v: appendSPDXJSON ok = %v", fallback, ok)
		}
		pred, err := marshalSPDX(doc)
		if err != nil {
			t.Fatal(err)
		}
		want, err := marshalStatement(in.Subject, PredicateTypeSPDX, pred)
		if err != nil {
			t.Fatal(err)
		}
		got, err := marshalSPDXStatement(in.Subject, doc)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.statement(), want.statement()) {
			t.Errorf("fallback %v: (-marshalStatement +marshalSPDXStatement):\n%s", fallback, cmp.Diff(string(want.statement()), string(got.statement())))
		}
	}
}

// TestAppendJSONStringPositions: appendJSONString agrees with encoding/json
// (HTML escaping off) for every awkward piece at every offset around the
// 8-byte words its fast scan reads, and for random strings.
func TestAppendJSONStringPositions(t *testing.T) {
	check := func(s string) {
		t.Helper()
		want, err := marshalNoEscape(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendJSONString(nil, s); !bytes.Equal(got, want) {
			t.Fatalf("appendJSONString(%q) = %s; encoding/json %s", s, got, want)
		}
	}
	for _, piece := range awkwardPieces {
		for off := range 18 {
			for tail := range 10 {
				check(strings.Repeat("a", off) + piece + strings.Repeat("b", tail))
				check(strings.Repeat("a", off) + piece + strings.Repeat("b", tail) + piece)
			}
		}
	}
	// Every byte value in every lane of a word.
	for c := range 256 {
		for lane := range 8 {
			b := []byte("abcdefghijklmnop")
			b[lane] = byte(c)
			check(string(b))
		}
	}
	r := rand.New(rand.NewPCG(2, 8))
	for range 2000 {
		check(randomString(r, 30))
	}
}

// BenchmarkMarshalSPDX compares the hand-written SPDX encoder with
// tools-golang's on a 1,000-package document.
func BenchmarkMarshalSPDX(b *testing.B) {
	in := testInput(1000)
	doc, err := BuildSPDX(&in, testTime)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("appendSPDXJSON", func(b *testing.B) {
		b.ReportAllocs()
		defer testtools.ReportCPU(b)()
		for b.Loop() {
			if _, err := marshalSPDX(doc); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("tools-golang", func(b *testing.B) {
		b.ReportAllocs()
		defer testtools.ReportCPU(b)()
		for b.Loop() {
			if _, err := marshalSPDXToolsGolang(doc, spdxSizeHint(doc)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestPackageIDAndPurl compares packageSPDXID, purl and mapLicense with
// their straightforward forms (string concatenation, as they were written
// before being tuned for allocations) on random packages.
func TestPackageIDAndPurl(t *testing.T) {
	idPart := func(s string) string {
		b := []byte(s)
		for i, c := range b {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
				b[i] = '-'
			}
		}
		return string(b)
	}
	escape := func(s string) string {
		var b strings.Builder
		for i := 0; i < len(s); i++ {
			c := s[i]
			if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_' || c == '~' {
				b.WriteByte(c)
			} else {
				fmt.Fprintf(&b, "%%%02X", c)
			}
		}
		return b.String()
	}
	r := rand.New(rand.NewPCG(7, 7))
	pkgs := testInput(20).Packages
	for range 50 {
		pkgs = append(pkgs, randomInput(r).Packages...)
	}
	pkgs = append(pkgs, Package{Name: "a\x00/é", Version: "1 2", Arch: "%", Checksum: apk.Checksum{Alg: apk.ChecksumSHA1, Digest: make([]byte, 20)}, Repository: Repository{Distro: "Wolfi OS"}})
	for _, p := range pkgs {
		wantID := "Package-apk-" + idPart(p.Name) + "-" + idPart(p.Version) + "-" + idPart(p.Arch) + "-" + p.Checksum.Hex()[:16]
		if got := packageSPDXID(&p); got != wantID {
			t.Errorf("packageSPDXID = %q; want %q", got, wantID)
		}
		wantPurl := "pkg:apk/" + escape(strings.ToLower(p.Repository.Distro)) + "/" + escape(strings.ToLower(p.Name)) + "@" + escape(p.Version) + "?arch=" + escape(p.Arch)
		if got := purl(&p); got != wantPurl {
			t.Errorf("purl = %q; want %q", got, wantPurl)
		}
		if got := purlEscape(p.Name); got != escape(p.Name) {
			t.Errorf("purlEscape(%q) = %q; want %q", p.Name, got, escape(p.Name))
		}
		declared, ok := spdxLicense(p.License)
		want := packageLicense{declared: declared}
		if !ok && p.License != "" {
			want.comment = "APK index license (L:) " + p.License + " is not a recognised SPDX license expression"
		}
		if got := mapLicense(p.License); got != want {
			t.Errorf("mapLicense(%q) = %+v; want %+v", p.License, got, want)
		}
	}
}

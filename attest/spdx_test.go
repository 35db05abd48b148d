package attest

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx"
	"github.com/spdx/tools-golang/spdx/v2/common"
	"github.com/spdx/tools-golang/spdxlib"

	"github.com/vouchdev/vouch/apk"
)

// update rewrites the golden files: go test ./attest -run TestGolden -update
var update = flag.Bool("update", false, "rewrite attest/testdata golden files")

// TestGolden compares both statements for a fixed input with
// testdata/*.golden.json (indented for review; indenting is lossless on the
// compact bytes Issue writes). Regenerate with:
//
//	go test ./attest -run TestGolden -update
func TestGolden(t *testing.T) {
	atts, err := Issue(context.Background(), newTestSigner(t, KeyEd25519), testInput(7))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range atts {
		name := map[string]string{PredicateTypeSPDX: "spdx", PredicateTypeVSA: "vsa"}[a.PredicateType]
		path := filepath.Join("testdata", name+".statement.golden.json")
		var got bytes.Buffer
		if err := json.Indent(&got, a.Statement, "", "  "); err != nil {
			t.Fatal(err)
		}
		got.WriteByte('\n')
		if *update {
			if err := os.WriteFile(path, got.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (regenerate: go test ./attest -run TestGolden -update)", err)
		}
		if diff := cmp.Diff(string(want), got.String()); diff != "" {
			t.Errorf("%s differs (-want +got); if intended, regenerate with go test ./attest -run TestGolden -update:\n%s", path, diff)
		}
	}
}

func TestSPDXValidates(t *testing.T) {
	in := testInput(12)
	doc, err := BuildSPDX(&in, testTime)
	if err != nil {
		t.Fatal(err)
	}
	if err := spdxlib.ValidateDocument(doc); err != nil {
		t.Fatal(err)
	}
	described, err := spdxlib.GetDescribedPackageIDs(doc)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]common.ElementID{subjectSPDXID}, described); diff != "" {
		t.Errorf("described packages (-want +got):\n%s", diff)
	}
	seen := map[common.ElementID]bool{}
	for _, p := range doc.Packages {
		id := "SPDXRef-" + string(p.PackageSPDXIdentifier)
		if seen[p.PackageSPDXIdentifier] {
			t.Errorf("duplicate SPDX id %s", id)
		}
		seen[p.PackageSPDXIdentifier] = true
		for _, c := range id {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
				t.Errorf("SPDX id %q has %q (SPDX 2.3 clause 7.2)", id, c)
			}
		}
	}
}

// TestSPDXReadBack reads the signed SPDX predicate with tools-golang and
// finds every package with its purl, checksums and evidence.
func TestSPDXReadBack(t *testing.T) {
	in := testInput(12)
	// One apk-tools 3 identity (SHA-256 C:) too.
	c2, err := apk.ParseChecksum("X2" + hexOf("q2"))
	if err != nil {
		t.Fatal(err)
	}
	in.Packages[3].Checksum = c2
	atts, err := Issue(context.Background(), newTestSigner(t, KeyECDSAP256), in)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := spdxjson.Read(bytes.NewReader(predicateOf(t, atts[0].Statement)))
	if err != nil {
		t.Fatal(err)
	}
	if doc.SPDXVersion != "SPDX-2.3" || doc.CreationInfo.Created != "2026-11-05T10:30:00Z" {
		t.Errorf("version %q created %q", doc.SPDXVersion, doc.CreationInfo.Created)
	}
	byName := map[string]*spdx.Package{}
	for _, p := range doc.Packages {
		byName[p.PackageName] = p
	}
	contains := map[string]bool{}
	for _, r := range doc.Relationships {
		if r.Relationship == common.TypeRelationshipContains && r.RefA.ElementRefID == subjectSPDXID {
			contains[string(r.RefB.ElementRefID)] = true
		}
	}
	for _, want := range in.Packages {
		got, ok := byName[want.Name]
		if !ok {
			t.Errorf("package %s missing", want.Name)
			continue
		}
		if got.PackageVersion != want.Version {
			t.Errorf("%s: version %q; want %q", want.Name, got.PackageVersion, want.Version)
		}
		if !contains[string(got.PackageSPDXIdentifier)] {
			t.Errorf("%s: no CONTAINS relationship from the subject", want.Name)
		}
		var purls []string
		for _, r := range got.PackageExternalReferences {
			if r.Category == common.CategoryPackageManager && r.RefType == common.TypePackageManagerPURL {
				purls = append(purls, r.Locator)
			}
		}
		wantPurl := "pkg:apk/" + want.Repository.Distro + "/" + purlEscape(want.Name) + "@" + want.Version + "?arch=" + want.Arch
		if diff := cmp.Diff([]string{wantPurl}, purls); diff != "" {
			t.Errorf("%s: purls (-want +got):\n%s", want.Name, diff)
		}
		wantSums := map[common.ChecksumAlgorithm]string{}
		if want.Checksum.Alg == apk.ChecksumSHA1 {
			wantSums[common.SHA1] = want.Checksum.Hex()
			if want.DataHash != "" {
				wantSums[common.SHA256] = want.DataHash
			}
		} else {
			wantSums[common.SHA256] = want.Checksum.Hex()
		}
		gotSums := map[common.ChecksumAlgorithm]string{}
		for _, c := range got.PackageChecksums {
			gotSums[c.Algorithm] = c.Value
		}
		if diff := cmp.Diff(wantSums, gotSums); diff != "" {
			t.Errorf("%s: checksums (-want +got):\n%s", want.Name, diff)
		}
		if len(got.Annotations) != 1 {
			t.Fatalf("%s: %d annotations; want 1", want.Name, len(got.Annotations))
		}
		var ev evidenceAnnotation
		if err := json.Unmarshal([]byte(got.Annotations[0].AnnotationComment), &ev); err != nil {
			t.Fatalf("%s: evidence annotation: %v", want.Name, err)
		}
		wantEv := evidenceAnnotation{
			Type:        evidenceAnnotationType,
			Repository:  want.Repository.Name,
			IndexURL:    want.Evidence.IndexURL,
			IndexSHA256: want.Evidence.IndexSHA256,
			SigningKey:  want.Evidence.SigningKey,
			FetchedAt:   "2026-11-05T10:00:00Z",
			Match:       want.Evidence.Match,
			Checksum:    want.Checksum.String(),
			DataHash:    want.DataHash,
			Origin:      want.Origin,
		}
		if diff := cmp.Diff(wantEv, ev); diff != "" {
			t.Errorf("%s: evidence (-want +got):\n%s", want.Name, diff)
		}
		wantDL := strings.TrimRight(want.Repository.URL, "/") + "/" + want.Arch + "/" + want.Name + "-" + want.Version + ".apk"
		if got.PackageDownloadLocation != wantDL {
			t.Errorf("%s: downloadLocation %q; want %q", want.Name, got.PackageDownloadLocation, wantDL)
		}
	}
	if got, want := len(doc.Packages), len(in.Packages)+1; got != want {
		t.Errorf("%d SPDX packages; want %d", got, want)
	}
}

func supplierOf(p *spdx.Package) string {
	return p.PackageSupplier.SupplierType + ": " + p.PackageSupplier.Supplier
}

func TestSPDXFields(t *testing.T) {
	tests := []struct {
		name string
		in   Package
		get  func(*spdx.Package) string // returns the field under test
		want string
	}{
		{name: "purl escapes ++", in: Package{Name: "libstdc++", Version: "14.2.0-r4", Arch: "x86_64", Repository: Repository{Distro: "Alpine"}},
			get:  func(p *spdx.Package) string { return p.PackageExternalReferences[0].Locator },
			want: "pkg:apk/alpine/libstdc%2B%2B@14.2.0-r4?arch=x86_64"},
		{name: "supplier without type is an organization", in: Package{Repository: Repository{Supplier: "Alpine Linux"}},
			get:  supplierOf,
			want: "Organization: Alpine Linux"},
		{name: "person supplier", in: Package{Repository: Repository{Supplier: "Person: Jane Doe (jane@example.com)"}},
			get:  supplierOf,
			want: "Person: Jane Doe (jane@example.com)"},
		{name: "no supplier", in: Package{},
			get:  func(p *spdx.Package) string { return p.PackageSupplier.Supplier },
			want: "NOASSERTION"},
		{name: "no repository url", in: Package{},
			get:  func(p *spdx.Package) string { return p.PackageDownloadLocation },
			want: "NOASSERTION"},
		{name: "unmapped license kept in comment", in: Package{License: "custom"},
			get:  func(p *spdx.Package) string { return p.PackageLicenseDeclared + " | " + p.PackageLicenseComments },
			want: "NOASSERTION | APK index license (L:) custom is not a recognised SPDX license expression"},
		{name: "origin", in: Package{Origin: "gcc"},
			get:  func(p *spdx.Package) string { return p.PackageSourceInfo },
			want: "built from APK origin package gcc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.in
			if p.Name == "" {
				p.Name, p.Version, p.Arch = "a", "1-r0", "x86_64"
			}
			p.Checksum = apk.Checksum{Alg: apk.ChecksumSHA1, Digest: make([]byte, 20)}
			sp := spdxPackage(&prepared{Package: &p, spdxID: packageSPDXID(&p), checksum: p.Checksum.String()}, "vouch-test", "2026-01-01T00:00:00Z", nil)
			if diff := cmp.Diff(tt.want, tt.get(sp)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestSPDXLicense(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		want   string
		wantOK bool
	}{
		{name: "simple", in: "MIT", want: "MIT", wantOK: true},
		{name: "case normalised", in: "mit", want: "MIT", wantOK: true},
		{name: "and", in: "GPL-2.0-or-later AND MIT", want: "GPL-2.0-or-later AND MIT", wantOK: true},
		{name: "lower-case operator", in: "Apache-2.0 or MIT", want: "Apache-2.0 OR MIT", wantOK: true},
		{name: "parentheses", in: "(MIT OR Apache-2.0) AND BSD-3-Clause", want: "(MIT OR Apache-2.0) AND BSD-3-Clause", wantOK: true},
		{name: "plus", in: "LGPL-2.1+", want: "LGPL-2.1+", wantOK: true},
		{name: "with exception", in: "GPL-3.0-or-later WITH GCC-exception-3.1", want: "GPL-3.0-or-later WITH GCC-exception-3.1", wantOK: true},
		{name: "empty", in: "", want: "NOASSERTION"},
		{name: "custom", in: "custom", want: "NOASSERTION"},
		{name: "bare BSD", in: "BSD", want: "NOASSERTION"},
		{name: "old alpine GPL2+", in: "GPL2+", want: "NOASSERTION"},
		{name: "LicenseRef without text", in: "LicenseRef-foo", want: "NOASSERTION"},
		{name: "unknown exception", in: "MIT WITH Foo-exception", want: "NOASSERTION"},
		{name: "dangling operator", in: "MIT AND", want: "NOASSERTION"},
		{name: "unbalanced", in: "(MIT", want: "NOASSERTION"},
		{name: "free text", in: "Public Domain", want: "NOASSERTION"},
		{name: "comma list", in: "MIT, BSD-3-Clause", want: "NOASSERTION"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := spdxLicense(tt.in)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("spdxLicense(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func FuzzSPDXLicense(f *testing.F) {
	for _, s := range []string{"MIT", "(MIT OR Apache-2.0) AND BSD-3-Clause", "GPL-2.0+ WITH Classpath-exception-2.0", "((", "AND"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := spdxLicense(s)
		if !ok {
			if got != noAssertion {
				t.Fatalf("refused %q but returned %q", s, got)
			}
			return
		}
		// A mapped expression is a fixed point.
		again, ok2 := spdxLicense(got)
		if !ok2 || again != got {
			t.Fatalf("spdxLicense(%q) = %q, but that maps to %q, %v", s, got, again, ok2)
		}
	})
}

// TestEvidenceJSON checks that the hand-written evidence encoder writes what
// encoding/json (HTML escaping off) writes, for awkward strings too.
func TestEvidenceJSON(t *testing.T) {
	for _, s := range []string{"", "plain", "quote\" back\\slash", "ctl\x00\x01\x1f\n\r\t", "html <&>", "utf8 é 世界", "bad \xff\xfe utf8", "sep \u2028 \u2029"} {
		t.Run(s, func(t *testing.T) {
			e := evidenceAnnotation{Type: s, Repository: s, IndexURL: s, IndexSHA256: s, SigningKey: s, FetchedAt: s, Match: Match(s), Checksum: s, DataHash: s, Origin: s}
			want, err := marshalNoEscape(e)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(string(want), string(e.appendJSON(nil))); diff != "" {
				t.Errorf("(-encoding/json +appendJSON):\n%s", diff)
			}
		})
	}
}

func FuzzEvidenceJSON(f *testing.F) {
	f.Add("a\"b\\c\x00é\xff\u2028")
	f.Fuzz(func(t *testing.T, s string) {
		e := evidenceAnnotation{Type: s, Origin: s}
		want, err := marshalNoEscape(e)
		if err != nil {
			t.Fatal(err)
		}
		if got := e.appendJSON(nil); string(got) != string(want) {
			t.Fatalf("appendJSON(%q) = %s; encoding/json = %s", s, got, want)
		}
	})
}

// TestDecodeSPDXMatchesToolsGolang checks that Verify's SPDX decoder gives
// what tools-golang's reader gives, on vouch's documents and on documents
// using the fields the fast path hands over to tools-golang.
func TestDecodeSPDXMatchesToolsGolang(t *testing.T) {
	in := testInput(9)
	doc, err := BuildSPDX(&in, testTime)
	if err != nil {
		t.Fatal(err)
	}
	vouchDoc, err := marshalSPDX(doc)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		doc  []byte
	}{
		{name: "vouch document", doc: vouchDoc},
		{name: "filesAnalyzed absent and a null relationship", doc: []byte(`{"spdxVersion":"SPDX-2.3","dataLicense":"CC0-1.0","SPDXID":"SPDXRef-DOCUMENT","name":"x","documentNamespace":"https://x/y","creationInfo":{"creators":["Tool: t"],"created":"2026-01-01T00:00:00Z"},"packages":[{"name":"a","SPDXID":"SPDXRef-a","downloadLocation":"NOASSERTION"}],"relationships":[null,{"spdxElementId":"SPDXRef-DOCUMENT","relatedSpdxElement":"SPDXRef-a","relationshipType":"DESCRIBES"}]}`)},
		{name: "documentDescribes and hasFiles", doc: []byte(`{"spdxVersion":"SPDX-2.3","dataLicense":"CC0-1.0","SPDXID":"SPDXRef-DOCUMENT","name":"x","documentNamespace":"https://x/y","creationInfo":{"creators":["Tool: t"],"created":"2026-01-01T00:00:00Z"},"documentDescribes":["SPDXRef-a"],"packages":[{"name":"a","SPDXID":"SPDXRef-a","downloadLocation":"NOASSERTION","filesAnalyzed":true,"hasFiles":["SPDXRef-f"]}],"files":[{"fileName":"f","SPDXID":"SPDXRef-f","checksums":[{"algorithm":"SHA1","checksumValue":"0000000000000000000000000000000000000000"}]}]}`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want, err := spdxjson.Read(bytes.NewReader(tt.doc))
			if err != nil {
				t.Fatal(err)
			}
			got, err := decodeSPDX(tt.doc)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got, cmpopts.IgnoreUnexported(spdx.Package{}), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("decodeSPDX differs from tools-golang (-want +got):\n%s", diff)
			}
		})
	}
}

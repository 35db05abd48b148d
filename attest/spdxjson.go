package attest

import (
	"encoding"
	"encoding/json"
	"reflect"
	"strings"
	"sync"

	"github.com/spdx/tools-golang/spdx"
	"github.com/spdx/tools-golang/spdx/v2/common"
)

// appendSPDXJSON appends doc as compact SPDX JSON, byte for byte what
// tools-golang's spdxjson.Write(doc, w, spdxjson.EscapeHTML(false)) writes
// (without its trailing newline): encoding/json over the v2_3 model, field
// order and omitempty from the struct tags, the MarshalJSON methods of
// ElementID, DocElementID, Creator, Supplier, Annotator and
// PackageExternalReference rendered as they render. It is written by hand
// because the reflective encoder is most of Issue's time
// (TestSPDXJSONMatchesToolsGolang and TestSPDXJSONRandom check the
// equivalence).
//
// It handles the documents buildSPDX makes and nothing more. It reports
// false, with dst unchanged, when doc uses anything else — a field vouch
// never sets (files, snippets, other licenses, external document
// references, document annotations, reviews, package originator, homepage,
// …), a value whose MarshalJSON fails or that encoding/json writes as null,
// or a tools-golang whose model is not the one this was written against
// (spdxModelKnown): the caller then uses tools-golang.
func appendSPDXJSON(dst []byte, doc *spdx.Document) ([]byte, bool) {
	if doc == nil || !spdxModelKnown() {
		return dst, false
	}
	ci := doc.CreationInfo
	switch {
	case len(doc.ExternalDocumentReferences) != 0, doc.DocumentComment != "",
		len(doc.Files) != 0, len(doc.OtherLicenses) != 0, len(doc.Annotations) != 0,
		len(doc.Snippets) != 0, len(doc.Reviews) != 0,
		ci == nil, ci.LicenseListVersion != "", ci.CreatorComment != "", len(ci.Creators) == 0:
		return dst, false
	}
	b := dst
	b = append(b, `{"spdxVersion":`...)
	b = appendJSONString(b, doc.SPDXVersion)
	b = append(b, `,"dataLicense":`...)
	b = appendJSONString(b, doc.DataLicense)
	b = append(b, `,"SPDXID":`...)
	b = appendSPDXElementID(b, doc.SPDXIdentifier)
	b = append(b, `,"name":`...)
	b = appendJSONString(b, doc.DocumentName)
	b = append(b, `,"documentNamespace":`...)
	b = appendJSONString(b, doc.DocumentNamespace)

	b = append(b, `,"creationInfo":{"creators":[`...)
	for i, c := range ci.Creators {
		// Creator.MarshalJSON: "<type>: <creator>"; an empty creator
		// is an empty MarshalJSON result, which encoding/json refuses.
		if c.Creator == "" {
			return dst, false
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = appendSPDXTyped(b, c.CreatorType, c.Creator)
	}
	b = append(b, `],"created":`...)
	b = appendJSONString(b, ci.Created)
	b = append(b, '}')

	if len(doc.Packages) != 0 {
		b = append(b, `,"packages":[`...)
		for i, p := range doc.Packages {
			if i > 0 {
				b = append(b, ',')
			}
			var ok bool
			if b, ok = appendSPDXPackage(b, p); !ok {
				return dst, false
			}
		}
		b = append(b, ']')
	}

	if len(doc.Relationships) != 0 {
		b = append(b, `,"relationships":[`...)
		for i, r := range doc.Relationships {
			if r == nil || r.RelationshipComment != "" {
				return dst, false
			}
			if i > 0 {
				b = append(b, ',')
			}
			var ok bool
			b = append(b, `{"spdxElementId":`...)
			if b, ok = appendSPDXDocElementID(b, r.RefA); !ok {
				return dst, false
			}
			b = append(b, `,"relatedSpdxElement":`...)
			if b, ok = appendSPDXDocElementID(b, r.RefB); !ok {
				return dst, false
			}
			b = append(b, `,"relationshipType":`...)
			b = appendJSONString(b, r.Relationship)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return append(b, '}'), true
}

// appendSPDXPackage appends one package in v2_3.Package field order, or
// reports false for a nil package or one using a field buildSPDX never
// sets.
func appendSPDXPackage(b []byte, p *spdx.Package) ([]byte, bool) {
	switch {
	case p == nil,
		p.PackageOriginator != nil, p.PackageVerificationCode != nil,
		p.PackageHomePage != "", len(p.PackageLicenseInfoFromFiles) != 0,
		p.PackageSummary != "", p.PackageDescription != "", p.PackageComment != "",
		len(p.PackageAttributionTexts) != 0, p.PrimaryPackagePurpose != "",
		p.ReleaseDate != "", p.BuiltDate != "", p.ValidUntilDate != "",
		len(p.Files) != 0:
		return b, false
	}
	b = append(b, `{"name":`...)
	b = appendJSONString(b, p.PackageName)
	b = append(b, `,"SPDXID":`...)
	b = appendSPDXElementID(b, p.PackageSPDXIdentifier)
	b = appendSPDXOptString(b, `,"versionInfo":`, p.PackageVersion)
	b = appendSPDXOptString(b, `,"packageFileName":`, p.PackageFileName)
	if s := p.PackageSupplier; s != nil {
		// Supplier.MarshalJSON: NOASSERTION as is, else "<type>:
		// <supplier>" when both are set, else an error.
		b = append(b, `,"supplier":`...)
		switch {
		case s.Supplier == noAssertion:
			b = appendJSONString(b, s.Supplier)
		case s.SupplierType != "" && s.Supplier != "":
			b = appendSPDXTyped(b, s.SupplierType, s.Supplier)
		default:
			return b, false
		}
	}
	b = append(b, `,"downloadLocation":`...)
	b = appendJSONString(b, p.PackageDownloadLocation)
	if p.FilesAnalyzed {
		b = append(b, `,"filesAnalyzed":true`...)
	} else {
		b = append(b, `,"filesAnalyzed":false`...)
	}
	if len(p.PackageChecksums) != 0 {
		b = append(b, `,"checksums":[`...)
		for i, c := range p.PackageChecksums {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"algorithm":`...)
			b = appendJSONString(b, string(c.Algorithm))
			b = append(b, `,"checksumValue":`...)
			b = appendJSONString(b, c.Value)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = appendSPDXOptString(b, `,"sourceInfo":`, p.PackageSourceInfo)
	b = appendSPDXOptString(b, `,"licenseConcluded":`, p.PackageLicenseConcluded)
	b = appendSPDXOptString(b, `,"licenseDeclared":`, p.PackageLicenseDeclared)
	b = appendSPDXOptString(b, `,"licenseComments":`, p.PackageLicenseComments)
	b = appendSPDXOptString(b, `,"copyrightText":`, p.PackageCopyrightText)
	if len(p.PackageExternalReferences) != 0 {
		b = append(b, `,"externalRefs":[`...)
		for i, r := range p.PackageExternalReferences {
			if r == nil || r.ExternalRefComment != "" {
				return b, false
			}
			if i > 0 {
				b = append(b, ',')
			}
			// PackageExternalReference.MarshalJSON writes the category
			// with "_" replaced by "-".
			b = append(b, `{"referenceCategory":`...)
			b = appendJSONString(b, strings.ReplaceAll(r.Category, "_", "-"))
			b = append(b, `,"referenceType":`...)
			b = appendJSONString(b, r.RefType)
			b = append(b, `,"referenceLocator":`...)
			b = appendJSONString(b, r.Locator)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if len(p.Annotations) != 0 {
		b = append(b, `,"annotations":[`...)
		for i := range p.Annotations {
			a := &p.Annotations[i]
			// Annotator.MarshalJSON: like Creator. The annotation's
			// SPDX id is not written (json:"-").
			if a.Annotator.Annotator == "" {
				return b, false
			}
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"annotator":`...)
			b = appendSPDXTyped(b, a.Annotator.AnnotatorType, a.Annotator.Annotator)
			b = append(b, `,"annotationDate":`...)
			b = appendJSONString(b, a.AnnotationDate)
			b = append(b, `,"annotationType":`...)
			b = appendJSONString(b, a.AnnotationType)
			b = append(b, `,"comment":`...)
			b = appendJSONString(b, a.AnnotationComment)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return append(b, '}'), true
}

// appendSPDXOptString appends key and s unless s is empty (omitempty).
func appendSPDXOptString(b []byte, key, s string) []byte {
	if s == "" {
		return b
	}
	b = append(b, key...)
	return appendJSONString(b, s)
}

// appendSPDXTyped appends the JSON string "<typ>: <name>", as the
// MarshalJSON of Creator, Supplier and Annotator format it. The ASCII ": "
// between the parts makes escaping them one by one exact.
func appendSPDXTyped(b []byte, typ, name string) []byte {
	b = append(b, '"')
	b = appendJSONChars(b, typ)
	b = append(b, ':', ' ')
	b = appendJSONChars(b, name)
	return append(b, '"')
}

// spdxRefPrefix is what ElementID.MarshalJSON puts before an id that does
// not already start with it.
const spdxRefPrefix = "SPDXRef-"

// appendSPDXElementID appends id as ElementID.MarshalJSON writes it.
func appendSPDXElementID(b []byte, id common.ElementID) []byte {
	s := string(id)
	if strings.HasPrefix(s, spdxRefPrefix) {
		return appendJSONString(b, s)
	}
	b = append(b, `"`+spdxRefPrefix...)
	b = appendJSONChars(b, s)
	return append(b, '"')
}

// appendSPDXDocElementID appends an element of this document (no
// DocumentRef-, no special id) as DocElementID.MarshalJSON writes it, and
// reports false for any other form.
func appendSPDXDocElementID(b []byte, id common.DocElementID) ([]byte, bool) {
	if id.DocumentRefID != "" || id.SpecialID != "" || id.ElementRefID == "" {
		return b, false
	}
	return appendSPDXElementID(b, id.ElementRefID), true
}

// spdxModelKnown reports whether tools-golang's model types are field for
// field (name, type, JSON tag) the ones appendSPDXJSON was written against,
// with JSON or text marshalers on exactly the types it expects. A
// tools-golang that adds, renames or retypes a field, or gives a type a
// MarshalJSON, turns the fast path off rather than have it write other
// bytes (TestSPDXJSONMatchesToolsGolang then fails, so it is noticed).
var spdxModelKnown = sync.OnceValue(func() bool {
	return spdxModelMismatch() == ""
})

// spdxModelMismatch describes the first difference between tools-golang's
// model and what appendSPDXJSON expects, or returns "".
func spdxModelMismatch() string {
	type want struct {
		v         any      // a value of the type
		fields    []string // "Name type tag", in order; nil: not a struct checked field by field
		marshaler bool     // whether T or *T implements json.Marshaler
	}
	types := []want{
		{v: spdx.Document{}, fields: []string{
			"SPDXVersion string spdxVersion",
			"DataLicense string dataLicense",
			"SPDXIdentifier common.ElementID SPDXID",
			"DocumentName string name",
			"DocumentNamespace string documentNamespace",
			"ExternalDocumentReferences []v2_3.ExternalDocumentRef externalDocumentRefs,omitempty",
			"DocumentComment string comment,omitempty",
			"CreationInfo *v2_3.CreationInfo creationInfo",
			"Packages []*v2_3.Package packages,omitempty",
			"Files []*v2_3.File files,omitempty",
			"OtherLicenses []*v2_3.OtherLicense hasExtractedLicensingInfos,omitempty",
			"Relationships []*v2_3.Relationship relationships,omitempty",
			"Annotations []*v2_3.Annotation annotations,omitempty",
			"Snippets []v2_3.Snippet snippets,omitempty",
			"Reviews []*v2_3.Review -",
		}},
		{v: spdx.CreationInfo{}, fields: []string{
			"LicenseListVersion string licenseListVersion,omitempty",
			"Creators []common.Creator creators",
			"Created string created",
			"CreatorComment string comment,omitempty",
		}},
		{v: spdx.Package{}, fields: []string{
			"IsUnpackaged bool -",
			"PackageName string name",
			"PackageSPDXIdentifier common.ElementID SPDXID",
			"PackageVersion string versionInfo,omitempty",
			"PackageFileName string packageFileName,omitempty",
			"PackageSupplier *common.Supplier supplier,omitempty",
			"PackageOriginator *common.Originator originator,omitempty",
			"PackageDownloadLocation string downloadLocation",
			"FilesAnalyzed bool filesAnalyzed",
			"IsFilesAnalyzedTagPresent bool -",
			"PackageVerificationCode *common.PackageVerificationCode packageVerificationCode,omitempty",
			"PackageChecksums []common.Checksum checksums,omitempty",
			"PackageHomePage string homepage,omitempty",
			"PackageSourceInfo string sourceInfo,omitempty",
			"PackageLicenseConcluded string licenseConcluded,omitempty",
			"PackageLicenseInfoFromFiles []string licenseInfoFromFiles,omitempty",
			"PackageLicenseDeclared string licenseDeclared,omitempty",
			"PackageLicenseComments string licenseComments,omitempty",
			"PackageCopyrightText string copyrightText,omitempty",
			"PackageSummary string summary,omitempty",
			"PackageDescription string description,omitempty",
			"PackageComment string comment,omitempty",
			"PackageExternalReferences []*v2_3.PackageExternalReference externalRefs,omitempty",
			"PackageAttributionTexts []string attributionTexts,omitempty",
			"PrimaryPackagePurpose string primaryPackagePurpose,omitempty",
			"ReleaseDate string releaseDate,omitempty",
			"BuiltDate string builtDate,omitempty",
			"ValidUntilDate string validUntilDate,omitempty",
			"Files []*v2_3.File files,omitempty",
			"Annotations []v2_3.Annotation annotations,omitempty",
			"hasFiles []common.DocElementID ", // unexported: never written
		}},
		{v: spdx.PackageExternalReference{}, marshaler: true, fields: []string{
			"Category string referenceCategory",
			"RefType string referenceType",
			"Locator string referenceLocator",
			"ExternalRefComment string comment,omitempty",
		}},
		{v: spdx.Annotation{}, fields: []string{
			"Annotator common.Annotator annotator",
			"AnnotationDate string annotationDate",
			"AnnotationType string annotationType",
			"AnnotationSPDXIdentifier common.DocElementID -",
			"AnnotationComment string comment",
		}},
		{v: spdx.Relationship{}, fields: []string{
			"RefA common.DocElementID spdxElementId",
			"RefB common.DocElementID relatedSpdxElement",
			"Relationship string relationshipType",
			"RelationshipComment string comment,omitempty",
		}},
		{v: common.Checksum{}, fields: []string{
			"Algorithm common.ChecksumAlgorithm algorithm",
			"Value string checksumValue",
		}},
		{v: common.Creator{}, marshaler: true, fields: []string{"Creator string ", "CreatorType string "}},
		{v: common.Supplier{}, marshaler: true, fields: []string{"Supplier string ", "SupplierType string "}},
		{v: common.Annotator{}, marshaler: true, fields: []string{"Annotator string ", "AnnotatorType string "}},
		{v: common.DocElementID{}, marshaler: true, fields: []string{
			"DocumentRefID common.DocumentID ", "ElementRefID common.ElementID ", "SpecialID string ",
		}},
		{v: common.ElementID(""), marshaler: true},
		{v: common.ChecksumAlgorithm("")},
	}
	jsonMarshaler := reflect.TypeFor[json.Marshaler]()
	textMarshaler := reflect.TypeFor[encoding.TextMarshaler]()
	for _, w := range types {
		t := reflect.TypeOf(w.v)
		pt := reflect.PointerTo(t)
		if m := pt.Implements(jsonMarshaler); m != w.marshaler {
			return t.String() + ": json.Marshaler changed"
		}
		if pt.Implements(textMarshaler) {
			return t.String() + ": has a MarshalText"
		}
		if w.fields == nil {
			if t.Kind() != reflect.String {
				return t.String() + ": no longer a string"
			}
			continue
		}
		if t.NumField() != len(w.fields) {
			return t.String() + ": fields changed"
		}
		for i := range t.NumField() {
			f := t.Field(i)
			if got := f.Name + " " + f.Type.String() + " " + f.Tag.Get("json"); got != w.fields[i] {
				return t.String() + ": field " + got + "; want " + w.fields[i]
			}
		}
	}
	return ""
}

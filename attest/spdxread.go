package attest

import (
	"encoding/json"
	"fmt"

	"github.com/spdx/tools-golang/spdx"
	"github.com/spdx/tools-golang/spdx/v2/common"
)

// Method-less copies of the SPDX 2.3 model types: encoding/json decodes them
// field by field instead of calling tools-golang's UnmarshalJSON, which
// decodes every document and every package twice.
type (
	spdxDocFields spdx.Document
	spdxPkgFields spdx.Package
)

// spdxPkgWire is a package as decoded: filesAnalyzed as a pointer so that
// "absent" can be told from false, and hasFiles seen (the outer fields
// shadow the embedded ones with the same JSON name).
type spdxPkgWire struct {
	spdxPkgFields
	FilesAnalyzed *bool                 `json:"filesAnalyzed"`
	HasFiles      []common.DocElementID `json:"hasFiles"`
}

type spdxDocWire struct {
	spdxDocFields
	Packages          []*spdxPkgWire        `json:"packages"`
	DocumentDescribes []common.DocElementID `json:"documentDescribes"`
}

// decodeSPDX decodes an SPDX 2.3 JSON document into tools-golang's model
// with the same result as its own reader (TestDecodeSPDXMatchesToolsGolang):
// filesAnalyzed defaults to true when absent (SPDX 2.3 clause 7.8), null
// relationships are dropped. A document that uses documentDescribes or
// hasFiles, which the reader turns into relationships, is decoded by
// tools-golang itself.
func decodeSPDX(b []byte) (*spdx.Document, error) {
	var w spdxDocWire
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, err
	}
	slow := len(w.DocumentDescribes) > 0
	for _, p := range w.Packages {
		if p != nil && len(p.HasFiles) > 0 {
			slow = true
		}
	}
	if slow {
		doc := &spdx.Document{}
		if err := json.Unmarshal(b, doc); err != nil {
			return nil, err
		}
		return doc, nil
	}
	doc := spdx.Document(w.spdxDocFields)
	doc.Packages = make([]*spdx.Package, 0, len(w.Packages))
	for _, wp := range w.Packages {
		if wp == nil {
			return nil, fmt.Errorf("null package")
		}
		p := spdx.Package(wp.spdxPkgFields)
		p.FilesAnalyzed = true
		if wp.FilesAnalyzed != nil {
			p.FilesAnalyzed = *wp.FilesAnalyzed
			p.IsFilesAnalyzedTagPresent = true
		}
		doc.Packages = append(doc.Packages, &p)
	}
	rels := doc.Relationships[:0]
	for _, r := range doc.Relationships {
		if r != nil {
			rels = append(rels, r)
		}
	}
	doc.Relationships = rels
	return &doc, nil
}

package ociattest

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func TestAttachFind(t *testing.T) {
	atts := []Attestation{
		{PredicateType: "https://spdx.dev/Document", Bundle: []byte(`{"b":"spdx"}`), Envelope: []byte(`{"e":"spdx"}`)},
		{PredicateType: "https://slsa.dev/verification_summary/v1", Bundle: []byte(`{"b":"vsa"}`), Envelope: []byte(`{"e":"vsa"}`)},
	}
	for _, referrers := range []bool{true, false} {
		t.Run(map[bool]string{true: "referrers API", false: "tag schema"}[referrers], func(t *testing.T) {
			srv := httptest.NewServer(registry.New(registry.WithReferrersSupport(referrers), registry.Logger(log.New(io.Discard, "", 0))))
			defer srv.Close()
			host := strings.TrimPrefix(srv.URL, "http://")
			img, err := random.Image(64, 1)
			if err != nil {
				t.Fatal(err)
			}
			ref, _ := name.ParseReference(host + "/app:v1")
			if err := remote.Write(ref, img); err != nil {
				t.Fatal(err)
			}
			h, _ := img.Digest()
			d := ref.Context().Digest(h.String())
			ctx := context.Background()
			if _, err := Find(ctx, d); !errors.Is(err, ErrNotFound) {
				t.Fatalf("Find before Attach: %v; want ErrNotFound", err)
			}
			// Twice: Attach is idempotent.
			for range 2 {
				if err := Attach(ctx, d, atts); err != nil {
					t.Fatal(err)
				}
			}
			found, err := Find(ctx, d)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range found {
				got = append(got, f.Layout+" "+f.PredicateType+" "+string(f.Data))
			}
			sort.Strings(got)
			want := []string{
				`att https://slsa.dev/verification_summary/v1 {"e":"vsa"}`,
				`att https://spdx.dev/Document {"e":"spdx"}`,
				`referrer https://slsa.dev/verification_summary/v1 {"b":"vsa"}`,
				`referrer https://spdx.dev/Document {"b":"spdx"}`,
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			// The referrer manifest's shape (OCI 1.1 artifact).
			for _, f := range found {
				if f.Layout != "referrer" {
					continue
				}
				rd, _ := name.NewDigest(f.Where)
				desc, err := remote.Get(rd)
				if err != nil {
					t.Fatal(err)
				}
				var m struct {
					ArtifactType string `json:"artifactType"`
					Config       struct {
						MediaType string `json:"mediaType"`
						Size      int64  `json:"size"`
					} `json:"config"`
					Subject struct {
						Digest string `json:"digest"`
					} `json:"subject"`
					Annotations map[string]string `json:"annotations"`
				}
				if err := json.Unmarshal(desc.Manifest, &m); err != nil {
					t.Fatal(err)
				}
				if m.ArtifactType != string(BundleMediaType) || m.Config.MediaType != string(EmptyMediaType) || m.Config.Size != 2 ||
					m.Subject.Digest != h.String() || m.Annotations[AnnotationBundleContent] != "dsse-envelope" || m.Annotations[AnnotationBundlePredicateType] == "" {
					t.Errorf("referrer manifest %s", desc.Manifest)
				}
			}
		})
	}
}

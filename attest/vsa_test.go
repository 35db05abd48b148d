package attest

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestVSALevels(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Input)
		want   []string
	}{
		{name: "datahash missing and history", mutate: func(*Input) {}, want: []string{LevelIndexVerified}},
		{name: "every datahash, some history", mutate: func(in *Input) {
			for i := range in.Packages {
				in.Packages[i].DataHash = hexOf(in.Packages[i].Name)
			}
		}, want: []string{LevelIndexVerified, LevelDatahashVerified}},
		{name: "all current, datahash missing", mutate: func(in *Input) {
			for i := range in.Packages {
				in.Packages[i].Evidence.Match = MatchCurrent
			}
		}, want: []string{LevelIndexVerified, LevelIndexCurrent}},
		{name: "everything", mutate: func(in *Input) {
			for i := range in.Packages {
				in.Packages[i].DataHash = hexOf(in.Packages[i].Name)
				in.Packages[i].Evidence.Match = MatchCurrent
			}
		}, want: []string{LevelIndexVerified, LevelDatahashVerified, LevelIndexCurrent}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := testInput(6)
			tt.mutate(&in)
			v, err := BuildVSA(&in, testTime)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, v.VerifiedLevels); diff != "" {
				t.Errorf("verifiedLevels (-want +got):\n%s", diff)
			}
			if v.VerificationResult != VerificationPassed || v.Summary.PackageCount != 6 {
				t.Errorf("result %q, count %d", v.VerificationResult, v.Summary.PackageCount)
			}
		})
	}
}

func TestVSAResourceURI(t *testing.T) {
	d := testSubjectSHA256
	tests := []struct {
		name string
		subj Subject
		want string
	}{
		{name: "image name", subj: Subject{Name: "registry.example/app"}, want: "oci://registry.example/app@sha256:" + d},
		{name: "already pinned", subj: Subject{Name: "registry.example/app@sha256:" + d}, want: "oci://registry.example/app@sha256:" + d},
		{name: "has a scheme", subj: Subject{Name: "https://example.com/rootfs.tar"}, want: "https://example.com/rootfs.tar@sha256:" + d},
		{name: "explicit", subj: Subject{Name: "x", ResourceURI: "oci://r/x@sha256:" + d}, want: "oci://r/x@sha256:" + d},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.subj.Digest = map[string]string{"sha256": d}
			if got := tt.subj.resourceURI(); got != tt.want {
				t.Errorf("resourceURI = %q; want %q", got, tt.want)
			}
		})
	}
}

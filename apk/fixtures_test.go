package apk

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// realDir holds unmodified real-world fixtures; README.md and MANIFEST.json
// there record their provenance and the values every test checks.
var realDir = filepath.Join("..", "testdata", "real")

func readFixture(tb testing.TB, rel string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(realDir, filepath.FromSlash(rel)))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func fixtureKeys(tb testing.TB, names ...string) *Keyring {
	tb.Helper()
	var paths []string
	for _, n := range names {
		paths = append(paths, filepath.Join(realDir, "keys", n))
	}
	if len(names) == 0 {
		paths = []string{filepath.Join(realDir, "keys")}
	}
	k, err := LoadKeyring(paths...)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// manifest mirrors the parts of MANIFEST.json the tests use.
type manifest struct {
	Files map[string]struct {
		Size     int64  `json:"size"`
		SHA256   string `json:"sha256"`
		Verified struct {
			// indexes
			Signatures []struct {
				Alg     string `json:"alg"`
				KeyName string `json:"keyname"`
				Result  string `json:"result"`
			} `json:"signatures"`
			Description        *string `json:"description"`
			PackageCount       int     `json:"package_count"`
			APKINDEXBytes      int64   `json:"apkindex_uncompressed_bytes"`
			SignedRegionOffset int64   `json:"signed_region_offset"`
			// packages
			Signed          *bool      `json:"signed"`
			PkgName         string     `json:"pkgname"`
			PkgVer          string     `json:"pkgver"`
			Arch            string     `json:"arch"`
			GzipMembers     [][2]int64 `json:"gzip_members"`
			ControlRange    string     `json:"control_range"`
			DataRange       string     `json:"data_range"`
			Q1              string     `json:"Q1"`
			DataSHA256Hex   string     `json:"data_sha256_hex"`
			PkginfoDatahash string     `json:"pkginfo_datahash"`
			DatahashMatches *bool      `json:"datahash_matches"`
			PackageSigs     []struct {
				Alg     string `json:"alg"`
				KeyName string `json:"keyname"`
				Result  string `json:"result"`
			} `json:"package_signatures"`
			ListedIn []struct {
				Index string `json:"index"`
				P     string `json:"P"`
				V     string `json:"V"`
				A     string `json:"A"`
				S     int64  `json:"S"`
			} `json:"listed_in_indexes"`
			// lock, installed
			Packages int `json:"packages"`
		} `json:"verified"`
	} `json:"files"`
}

func loadManifest(tb testing.TB) manifest {
	tb.Helper()
	var m manifest
	if err := json.Unmarshal(readFixture(tb, "MANIFEST.json"), &m); err != nil {
		tb.Fatal(err)
	}
	return m
}

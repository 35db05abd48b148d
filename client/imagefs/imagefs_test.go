package imagefs

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func TestParseInstalledRealFixtures(t *testing.T) {
	tests := []struct {
		file      string
		count     int
		firstName string
		firstSum  string
	}{
		{file: "alpine-3.21.3-x86_64.installed", count: 39, firstName: "alpine-base"},
		{file: "wolfi-base.apko-written.installed", count: 15, firstName: "wolfi-baselayout", firstSum: "Q15GKR2cusJFuJW5jYQBxRRQK9xTs="},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			f, err := os.Open(filepath.Join("..", "..", "testdata", "real", "installed", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			pkgs, err := ParseInstalled(f)
			if err != nil {
				t.Fatal(err)
			}
			if len(pkgs) != tt.count || pkgs[0].Name != tt.firstName {
				t.Errorf("%d packages, first %q; want %d, %q", len(pkgs), pkgs[0].Name, tt.count, tt.firstName)
			}
			if tt.firstSum != "" && pkgs[0].Checksum.String() != tt.firstSum {
				t.Errorf("first checksum %s; want %s", pkgs[0].Checksum, tt.firstSum)
			}
		})
	}
}

func TestParseInstalledRefuses(t *testing.T) {
	tests := []struct {
		name string
		db   string
	}{
		{name: "empty", db: ""},
		{name: "no checksum", db: "P:a\nV:1-r0\nA:x86_64\n\n"},
		{name: "md5 checksum", db: "P:a\nV:1-r0\nA:x86_64\nC:d41d8cd98f00b204e9800998ecf8427e\n\n"},
		{name: "not a field line", db: "P:a\nhello\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParseInstalled(strings.NewReader(tt.db)); !errors.Is(err, ErrInstalledFormat) {
				t.Errorf("err = %v; want ErrInstalledFormat", err)
			}
		})
	}
}

func TestParseRepositories(t *testing.T) {
	got := ParseRepositories([]byte("# comment\nhttps://a.example/os/\n\n@edge https://b.example/edge\n"))
	if diff := cmp.Diff([]string{"https://a.example/os", "https://b.example/edge"}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

const dbA = "P:a\nV:1-r0\nA:x86_64\nC:Q15GKR2cusJFuJW5jYQBxRRQK9xTs=\n\n"
const dbB = "P:b\nV:2-r0\nA:x86_64\nC:Q15GKR2cusJFuJW5jYQBxRRQK9xTs=\n\n"

type entry struct {
	name, data string
	link       bool
}

func tarLayer(t *testing.T, entries ...entry) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.data)), Typeflag: tar.TypeReg}
		if e.link {
			h = &tar.Header{Name: e.name, Linkname: e.data, Typeflag: tar.TypeSymlink}
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if !e.link {
			if _, err := tw.Write([]byte(e.data)); err != nil {
				t.Fatal(err)
			}
		}
	}
	tw.Close()
	raw := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestReadImageLayers(t *testing.T) {
	tests := []struct {
		name     string
		layers   [][]entry // bottom first
		wantPath string
		wantDB   string
		wantRepo string
		wantErr  error
	}{
		{
			name:     "apko path in one layer",
			layers:   [][]entry{{{name: "usr/lib/apk/db/installed", data: dbA}, {name: "etc/apk/repositories", data: "https://r.example/os\n"}}},
			wantPath: InstalledPaths[1], wantDB: dbA, wantRepo: "https://r.example/os\n",
		},
		{
			name:     "the top layer wins",
			layers:   [][]entry{{{name: "lib/apk/db/installed", data: dbA}}, {{name: "./lib/apk/db/installed", data: dbB}}},
			wantPath: InstalledPaths[0], wantDB: dbB,
		},
		{
			name:    "whiteout removes the lower database",
			layers:  [][]entry{{{name: "lib/apk/db/installed", data: dbA}}, {{name: "lib/apk/db/.wh.installed"}}},
			wantErr: ErrNoInstalled,
		},
		{
			name:    "opaque directory hides the lower database",
			layers:  [][]entry{{{name: "lib/apk/db/installed", data: dbA}}, {{name: "lib/apk/.wh..wh..opq"}}},
			wantErr: ErrNoInstalled,
		},
		{
			name:     "whiteout then re-added in a higher layer",
			layers:   [][]entry{{{name: "lib/apk/db/installed", data: dbA}}, {{name: "lib/apk/.wh.db"}}, {{name: "lib/apk/db/installed", data: dbB}}},
			wantPath: InstalledPaths[0], wantDB: dbB,
		},
		{
			name:     "symbolic link to the apko path",
			layers:   [][]entry{{{name: "usr/lib/apk/db/installed", data: dbB}, {name: "lib/apk/db/installed", data: "../../../usr/lib/apk/db/installed", link: true}}},
			wantPath: InstalledPaths[1], wantDB: dbB,
		},
		{
			name:    "two different databases",
			layers:  [][]entry{{{name: "lib/apk/db/installed", data: dbA}, {name: "usr/lib/apk/db/installed", data: dbB}}},
			wantErr: ErrAmbiguous,
		},
		{
			name:    "none",
			layers:  [][]entry{{{name: "etc/os-release", data: "x"}}},
			wantErr: ErrNoInstalled,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ls []v1.Layer
			for _, l := range tt.layers {
				ls = append(ls, tarLayer(t, l...))
			}
			img, err := mutate.AppendLayers(empty.Image, ls...)
			if err != nil {
				t.Fatal(err)
			}
			files, err := ReadImage(img)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v; want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if files.InstalledPath != tt.wantPath || string(files.Installed) != tt.wantDB || string(files.Repositories) != tt.wantRepo {
				t.Errorf("got %s %q repos %q; want %s %q %q", files.InstalledPath, files.Installed, files.Repositories, tt.wantPath, tt.wantDB, tt.wantRepo)
			}
		})
	}
}

func TestReadRootfs(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "usr/lib/apk/db"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "usr/lib/apk/db/installed"), []byte(dbA), 0o644); err != nil {
		t.Fatal(err)
	}
	// An absolute link out of the root is not followed to the host.
	if err := os.Symlink("/usr/lib", filepath.Join(dir, "lib")); err != nil {
		t.Fatal(err)
	}
	files, err := ReadRootfs(dir)
	if err != nil {
		t.Fatal(err)
	}
	if files.InstalledPath != InstalledPaths[1] || string(files.Installed) != dbA {
		t.Errorf("got %s %q", files.InstalledPath, files.Installed)
	}
}

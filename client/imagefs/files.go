package imagefs

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// maxSettingsFile bounds etc/apk/repositories and etc/apk/arch.
const maxSettingsFile = 1 << 20

// Files are the apk files read from a root filesystem.
type Files struct {
	// Installed is the installed database; InstalledPath says which of
	// InstalledPaths it came from.
	Installed     []byte
	InstalledPath string
	// Repositories is etc/apk/repositories, nil when absent.
	Repositories []byte
	// Arch is the first line of etc/apk/arch, "" when absent.
	Arch string
}

// Packages parses the installed database.
func (f *Files) Packages() ([]Package, error) {
	return ParseInstalled(bytes.NewReader(f.Installed))
}

// pick chooses the installed database from what was found at each path.
func pick(found [2][]byte) (*Files, error) {
	switch {
	case found[0] != nil && found[1] != nil:
		if !bytes.Equal(found[0], found[1]) {
			return nil, fmt.Errorf("%w: %s and %s differ", ErrAmbiguous, InstalledPaths[0], InstalledPaths[1])
		}
		return &Files{Installed: found[0], InstalledPath: InstalledPaths[0]}, nil
	case found[0] != nil:
		return &Files{Installed: found[0], InstalledPath: InstalledPaths[0]}, nil
	case found[1] != nil:
		return &Files{Installed: found[1], InstalledPath: InstalledPaths[1]}, nil
	default:
		return nil, fmt.Errorf("%w at %s or %s", ErrNoInstalled, InstalledPaths[0], InstalledPaths[1])
	}
}

func firstLine(b []byte) string {
	l, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimSpace(l)
}

// ReadRootfs reads the apk files of the root filesystem at dir. Paths are
// resolved inside dir only (os.Root): a symbolic link that leaves dir, such
// as an absolute /lib -> /usr/lib, counts as absent rather than being
// followed to the host.
func ReadRootfs(dir string) (*Files, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("opening root filesystem: %w", err)
	}
	defer root.Close()
	read := func(p string, limit int64) ([]byte, error) {
		f, err := root.Open(p)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return nil, err
		}
		if !st.Mode().IsRegular() {
			return nil, fs.ErrNotExist
		}
		b, err := io.ReadAll(io.LimitReader(f, limit+1))
		if err != nil {
			return nil, err
		}
		if int64(len(b)) > limit {
			return nil, fmt.Errorf("%s: over %d bytes", p, limit)
		}
		return b, nil
	}
	var found [2][]byte
	for i, p := range InstalledPaths {
		b, err := read(p, MaxInstalledSize)
		switch {
		case err == nil:
			found[i] = b
		case errors.Is(err, fs.ErrNotExist) || isEscape(err):
		default:
			return nil, fmt.Errorf("reading %s: %w", p, err)
		}
	}
	files, err := pick(found)
	if err != nil {
		return nil, err
	}
	if b, err := read(RepositoriesPath, maxSettingsFile); err == nil {
		files.Repositories = b
	}
	if b, err := read(ArchPath, maxSettingsFile); err == nil {
		files.Arch = firstLine(b)
	}
	return files, nil
}

// isEscape reports an os.Root error for a path that leaves the root.
func isEscape(err error) bool {
	return err != nil && strings.Contains(err.Error(), "escapes from parent")
}

// layerState tracks, while walking layers from the top down, which paths
// upper layers have already decided (found, or deleted by a whiteout).
type layerState struct {
	deleted map[string]bool // whiteouts: the path and everything below it
	opaque  map[string]bool // opaque directories: everything below them
}

// hidden reports whether p was removed by a whiteout in an upper layer
// (OCI image spec, layer.md "Whiteouts").
func (s *layerState) hidden(p string) bool {
	for q := p; q != "." && q != "/" && q != ""; q = path.Dir(q) {
		if s.deleted[q] {
			return true
		}
		if q != p && s.opaque[q] {
			return true
		}
	}
	return false
}

// ReadImage reads the apk files of an image by walking its layers from the
// top (last) layer down, as a container runtime would see them: for each
// path the topmost layer that has it wins, and whiteouts (".wh.<name>")
// and opaque directories (".wh..wh..opq") in an upper layer hide what lower
// layers have (OCI image spec, layer.md). Only the files it needs are kept
// in memory.
func ReadImage(img v1.Image) (*Files, error) {
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("reading image layers: %w", err)
	}
	targets := []string{InstalledPaths[0], InstalledPaths[1], RepositoriesPath, ArchPath}
	limits := []int64{MaxInstalledSize, MaxInstalledSize, maxSettingsFile, maxSettingsFile}
	decided := make([]bool, len(targets))
	content := make([][]byte, len(targets))
	st := &layerState{deleted: map[string]bool{}, opaque: map[string]bool{}}
	for i := len(layers) - 1; i >= 0; i-- {
		if err := scanLayer(layers[i], st, targets, limits, decided, content); err != nil {
			return nil, fmt.Errorf("layer %d: %w", i, err)
		}
		all := true
		for _, d := range decided {
			all = all && d
		}
		if all {
			break
		}
	}
	files, err := pick([2][]byte{content[0], content[1]})
	if err != nil {
		return nil, err
	}
	files.Repositories = content[2]
	if content[3] != nil {
		files.Arch = firstLine(content[3])
	}
	return files, nil
}

func scanLayer(l v1.Layer, st *layerState, targets []string, limits []int64, decided []bool, content [][]byte) error {
	rc, err := l.Uncompressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	// Whiteouts of this layer hide only lower layers: apply them after.
	var deleted, opaque []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("reading layer tar: %w", err)
		}
		name := path.Clean(strings.TrimPrefix(strings.TrimPrefix(h.Name, "./"), "/"))
		dir, base := path.Split(name)
		dir = path.Clean(dir)
		if base == ".wh..wh..opq" {
			opaque = append(opaque, dir)
			continue
		}
		if w, ok := strings.CutPrefix(base, ".wh."); ok {
			deleted = append(deleted, path.Join(dir, w))
			continue
		}
		for i, t := range targets {
			if decided[i] || name != t || st.hidden(t) {
				continue
			}
			decided[i] = true
			if h.Typeflag != tar.TypeReg {
				// A link or directory here masks lower layers; a symbolic
				// link is resolved through the other database path.
				continue
			}
			b, err := io.ReadAll(io.LimitReader(tr, limits[i]+1))
			if err != nil {
				return fmt.Errorf("reading %s: %w", t, err)
			}
			if int64(len(b)) > limits[i] {
				return fmt.Errorf("%s: over %d bytes", t, limits[i])
			}
			content[i] = b
		}
	}
	for _, d := range deleted {
		st.deleted[d] = true
	}
	for _, d := range opaque {
		st.opaque[d] = true
	}
	// A target hidden by this layer's whiteouts is decided (absent).
	for i, t := range targets {
		if !decided[i] && st.hidden(t) {
			decided[i] = true
		}
	}
	return nil
}

package imagefs

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/vouchdev/vouch/apk"
)

// Errors returned while reading an installed database or the files around
// it. Each one means the input cannot be trusted to describe the image:
// callers refuse rather than guess.
var (
	// ErrInstalledFormat reports an installed database that does not parse:
	// a record without P:, V:, A: or C:, a malformed C:, an overlong line.
	ErrInstalledFormat = errors.New("malformed apk installed database")
	// ErrNoInstalled reports a filesystem or image without an installed
	// database at either of InstalledPaths.
	ErrNoInstalled = errors.New("no apk installed database")
	// ErrAmbiguous reports two different installed databases at the two
	// paths of InstalledPaths.
	ErrAmbiguous = errors.New("two different apk installed databases")
)

// InstalledPaths are where apk-tools (lib/apk/db/installed) and apko
// (usr/lib/apk/db/installed) write the installed database, relative to the
// root. When both exist they MUST be the same file or have equal contents.
var InstalledPaths = [2]string{"lib/apk/db/installed", "usr/lib/apk/db/installed"}

// Paths of the apk settings files read beside the database.
const (
	RepositoriesPath = "etc/apk/repositories"
	ArchPath         = "etc/apk/arch"
)

// MaxInstalledSize bounds an installed database (a large image lists a few
// thousand packages with their files: tens of MiB at most).
const MaxInstalledSize = 256 << 20

// maxLine bounds one line of the database.
const maxLine = 1 << 20

// Package is one installed package: the index fields that identify it.
type Package struct {
	Name     string
	Version  string
	Arch     string // A: as written; "noarch" for noarch packages
	Checksum apk.Checksum
	Origin   string
}

// ParseInstalled reads an installed database (APK-FORMAT §6): records of
// "X:value" lines separated by blank lines, the index fields first and then
// the file lines (F, M, R, a, Z), which are skipped. Every record MUST have
// P, V, A and C; C must parse as an apk identity checksum. Unknown fields
// are ignored (apk-tools 3 adds some).
func ParseInstalled(r io.Reader) ([]Package, error) {
	sc := bufio.NewScanner(io.LimitReader(r, MaxInstalledSize+1))
	sc.Buffer(make([]byte, 64<<10), maxLine)
	var (
		out  []Package
		cur  Package
		rawC string
		have bool
		line int
		read int64
	)
	flush := func() error {
		if !have {
			return nil
		}
		if cur.Name == "" || cur.Version == "" || cur.Arch == "" || rawC == "" {
			return fmt.Errorf("%w: record ending at line %d lacks P:, V:, A: or C: (P:%q)", ErrInstalledFormat, line, cur.Name)
		}
		c, err := apk.ParseChecksum(rawC)
		if err != nil {
			return fmt.Errorf("%w: line %d: package %s: %w", ErrInstalledFormat, line, cur.Name, err)
		}
		cur.Checksum = c
		out = append(out, cur)
		cur, rawC, have = Package{}, "", false
		return nil
	}
	for sc.Scan() {
		line++
		b := sc.Bytes()
		read += int64(len(b)) + 1
		if read > MaxInstalledSize {
			return nil, fmt.Errorf("%w: over %d bytes", ErrInstalledFormat, MaxInstalledSize)
		}
		if len(bytes.TrimSpace(b)) == 0 {
			if err := flush(); err != nil {
				return nil, err
			}
			continue
		}
		if len(b) < 2 || b[1] != ':' {
			return nil, fmt.Errorf("%w: line %d is not \"X:value\"", ErrInstalledFormat, line)
		}
		have = true
		v := string(b[2:])
		switch b[0] {
		case 'P':
			cur.Name = v
		case 'V':
			cur.Version = v
		case 'A':
			cur.Arch = v
		case 'C':
			rawC = v
		case 'o':
			cur.Origin = v
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInstalledFormat, err)
	}
	if err := flush(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no packages", ErrInstalledFormat)
	}
	return out, nil
}

// ParseRepositories returns the repository URLs of an etc/apk/repositories
// file: one per line, without comments, blank lines and "@tag " prefixes.
func ParseRepositories(b []byte) []string {
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if strings.HasPrefix(l, "@") {
			_, rest, ok := strings.Cut(l, " ")
			if !ok {
				continue
			}
			l = strings.TrimSpace(rest)
		}
		out = append(out, strings.TrimRight(l, "/"))
	}
	return out
}

package apk

import (
	"errors"
	"fmt"
	"io"
	"strings"
)

// ErrInstalledFormat reports a malformed installed database.
var ErrInstalledFormat = errors.New("malformed installed database")

// InstalledPaths are where an image keeps its installed database:
// apk-tools writes lib/apk/db/installed, apko usr/lib/apk/db/installed
// (APK-FORMAT §6). Paths are relative to the image root.
var InstalledPaths = []string{"lib/apk/db/installed", "usr/lib/apk/db/installed"}

// MaxInstalledSize bounds an installed database read by ReadInstalled.
const MaxInstalledSize = 256 << 20

// InstalledPackage is one record of an installed database: the index
// fields plus the files the package installed.
type InstalledPackage struct {
	Entry
	// RepositoryTag is s:, Flags is f: (apk-tools 3).
	RepositoryTag string
	Flags         string
	Dirs          []InstalledDir
}

// FileDigestsSHA256 reports the apk-tools 3 f:S flag: the Z: values are
// SHA-256 truncated to 160 bits, not SHA-1 (APK-FORMAT §1.3).
func (p *InstalledPackage) FileDigestsSHA256() bool { return strings.ContainsRune(p.Flags, 'S') }

// InstalledDir is an F: line ("" for the top-level directory) with its M:
// ACL ("uid:gid:mode[:xattr-Q1]", "" when absent) and files.
type InstalledDir struct {
	Path  string
	ACL   string
	Files []InstalledFile
}

// InstalledFile is an R: line with its a: ACL and Z: checksum (zero when
// absent).
type InstalledFile struct {
	Name     string
	ACL      string
	Checksum Checksum
}

// ReadInstalled reads at most MaxInstalledSize bytes and parses them with
// ParseInstalled.
func ReadInstalled(r io.Reader) ([]InstalledPackage, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxInstalledSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading installed database: %w", err)
	}
	if len(b) > MaxInstalledSize {
		return nil, fmt.Errorf("%w: over %d bytes", ErrInstalledFormat, MaxInstalledSize)
	}
	return ParseInstalled(b)
}

// ParseInstalled parses an installed database (APK-FORMAT §6) as written by
// apk-tools (C first, octal modes without a leading zero) or by apko (C
// last, "i:[]", empty U:/c:/D: lines, 4-digit modes). Records need C, P, V
// and A with a valid checksum; file lines (F, M, R, a, Z) must follow their
// directory or file. Any malformed record fails the whole database (fail
// closed): it describes what is inside an image.
func ParseInstalled(b []byte) ([]InstalledPackage, error) {
	text := string(b)
	var out []InstalledPackage
	lineNo := 0
	for len(text) > 0 {
		var (
			p        InstalledPackage
			rawC     string
			seen     uint32
			start    = lineNo + 1
			haveLine bool
		)
		for len(text) > 0 {
			line := text
			if nl := strings.IndexByte(text, '\n'); nl >= 0 {
				line, text = text[:nl], text[nl+1:]
			} else {
				text = ""
			}
			lineNo++
			if len(line) > DefaultMaxLineLength {
				return nil, fmt.Errorf("%w: line %d over %d bytes", ErrInstalledFormat, lineNo, DefaultMaxLineLength)
			}
			if line == "" {
				break
			}
			haveLine = true
			if len(line) < 2 || line[1] != ':' {
				return nil, fmt.Errorf("%w: line %d: %q", ErrInstalledFormat, lineNo, truncate(line))
			}
			if err := p.addLine(&rawC, &seen, line[0], line[2:]); err != nil {
				return nil, fmt.Errorf("%w: line %d: %w", ErrInstalledFormat, lineNo, err)
			}
		}
		if !haveLine {
			continue
		}
		if err := checkRequired(seen); err != nil {
			return nil, fmt.Errorf("%w: record at line %d: %w", ErrInstalledFormat, start, err)
		}
		c, err := ParseChecksum(rawC)
		if err != nil {
			return nil, fmt.Errorf("%w: record at line %d: %w: %w", ErrInstalledFormat, start, ErrEntryChecksum, err)
		}
		p.Checksum = c
		out = append(out, p)
	}
	return out, nil
}

func (p *InstalledPackage) addLine(rawC *string, seen *uint32, key byte, val string) error {
	switch key {
	case 'F':
		p.Dirs = append(p.Dirs, InstalledDir{Path: val})
		return nil
	case 'M':
		if len(p.Dirs) == 0 {
			return errors.New("M: before any F:")
		}
		p.Dirs[len(p.Dirs)-1].ACL = val
		return nil
	case 'R':
		if len(p.Dirs) == 0 {
			return errors.New("R: before any F:")
		}
		d := &p.Dirs[len(p.Dirs)-1]
		d.Files = append(d.Files, InstalledFile{Name: val})
		return nil
	case 'a', 'Z':
		f := p.lastFile()
		if f == nil {
			return fmt.Errorf("%c: before any R:", key)
		}
		if key == 'a' {
			f.ACL = val
			return nil
		}
		c, err := ParseChecksum(val)
		if err != nil {
			return fmt.Errorf("Z: %w", err)
		}
		f.Checksum = c
		return nil
	case 's':
		p.RepositoryTag = val
		return nil
	case 'f':
		p.Flags = val
		return nil
	}
	known, err := setField(&p.Entry, rawC, seen, key, val)
	if err != nil {
		return err
	}
	if !known && key >= 'A' && key <= 'Z' {
		return fmt.Errorf("%w: %c", ErrUnknownField, key)
	}
	return nil
}

func (p *InstalledPackage) lastFile() *InstalledFile {
	if len(p.Dirs) == 0 {
		return nil
	}
	d := &p.Dirs[len(p.Dirs)-1]
	if len(d.Files) == 0 {
		return nil
	}
	return &d.Files[len(d.Files)-1]
}

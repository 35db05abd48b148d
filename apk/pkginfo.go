package apk

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// ErrPkgInfo reports a malformed .PKGINFO.
var ErrPkgInfo = errors.New("malformed .PKGINFO")

// MaxPkgInfoSize bounds a .PKGINFO file (real ones are a few KiB; very
// large provides lists stay far below).
const MaxPkgInfoSize = 1 << 20

// PkgInfo is the parsed .PKGINFO of a package's control member
// (APK-FORMAT §2). Multi-valued keys (depend, provides, replaces,
// install_if, triggers) collect every value in order.
type PkgInfo struct {
	Name             string   `json:"pkgname"`
	Version          string   `json:"pkgver"`
	Description      string   `json:"pkgdesc,omitempty"`
	URL              string   `json:"url,omitempty"`
	BuildDate        int64    `json:"builddate,omitempty"`
	Packager         string   `json:"packager,omitempty"`
	Size             int64    `json:"size,omitempty"`
	Arch             string   `json:"arch"`
	Origin           string   `json:"origin,omitempty"`
	Commit           string   `json:"commit,omitempty"`
	Maintainer       string   `json:"maintainer,omitempty"`
	License          string   `json:"license,omitempty"`
	Depends          []string `json:"depend,omitempty"`
	Provides         []string `json:"provides,omitempty"`
	Replaces         []string `json:"replaces,omitempty"`
	InstallIf        []string `json:"install_if,omitempty"`
	Triggers         []string `json:"triggers,omitempty"`
	ProviderPriority int64    `json:"provider_priority,omitempty"`
	ReplacesPriority int64    `json:"replaces_priority,omitempty"`
	// DataHash is the lower-case hex SHA-256 of the data part, "" when
	// absent (a legacy package, which vouch refuses: APK-FORMAT §8.11).
	DataHash string `json:"datahash,omitempty"`
}

// DataHashBytes returns the decoded datahash, or false when absent.
func (p *PkgInfo) DataHashBytes() ([32]byte, bool) {
	var out [32]byte
	if p == nil || len(p.DataHash) != 64 {
		return out, false
	}
	if _, err := hex.Decode(out[:], []byte(p.DataHash)); err != nil {
		return out, false
	}
	return out, true
}

// ParsePkgInfo parses a .PKGINFO: "key = value" lines, '#' comments and
// blank lines. It refuses input over MaxPkgInfoSize, lines without " = ",
// a repeated single-valued key, malformed numbers, a datahash that is not
// 64 lower-case hex digits, and a missing pkgname, pkgver or arch. Unknown
// keys are ignored, as apk-tools does.
func ParsePkgInfo(b []byte) (*PkgInfo, error) {
	if len(b) > MaxPkgInfoSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrPkgInfo, len(b))
	}
	p := &PkgInfo{}
	seen := map[string]bool{}
	s := string(b)
	for lineNo := 1; len(s) > 0; lineNo++ {
		line := s
		if nl := strings.IndexByte(s, '\n'); nl >= 0 {
			line, s = s[:nl], s[nl+1:]
		} else {
			s = ""
		}
		if line == "" || line[0] == '#' {
			continue
		}
		key, val, ok := strings.Cut(line, " = ")
		if !ok {
			return nil, fmt.Errorf("%w: line %d: %q", ErrPkgInfo, lineNo, truncate(line))
		}
		var err error
		multi := false
		switch key {
		case "pkgname":
			p.Name = val
		case "pkgver":
			p.Version = val
		case "pkgdesc":
			p.Description = val
		case "url":
			p.URL = val
		case "builddate":
			p.BuildDate, err = parseUint(val)
		case "packager":
			p.Packager = val
		case "size":
			p.Size, err = parseUint(val)
		case "arch":
			p.Arch = val
		case "origin":
			p.Origin = val
		case "commit":
			p.Commit = val
		case "maintainer":
			p.Maintainer = val
		case "license":
			// melange writes one line per license; join them.
			multi = true
			if p.License != "" {
				val = p.License + " AND " + val
			}
			p.License = val
		case "provider_priority":
			p.ProviderPriority, err = parseUint(val)
		case "replaces_priority":
			p.ReplacesPriority, err = parseUint(val)
		case "datahash":
			if len(val) != 64 || strings.ToLower(val) != val {
				err = errors.New("want 64 lower-case hex digits")
			} else if _, herr := hex.DecodeString(val); herr != nil {
				err = herr
			}
			p.DataHash = val
		case "depend":
			multi, p.Depends = true, append(p.Depends, val)
		case "provides":
			multi, p.Provides = true, append(p.Provides, val)
		case "replaces":
			multi, p.Replaces = true, append(p.Replaces, val)
		case "install_if":
			multi, p.InstallIf = true, append(p.InstallIf, strings.Fields(val)...)
		case "triggers":
			multi, p.Triggers = true, append(p.Triggers, strings.Fields(val)...)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: %s: %v", ErrPkgInfo, lineNo, key, err)
		}
		if !multi {
			if seen[key] {
				return nil, fmt.Errorf("%w: line %d: repeated %s", ErrPkgInfo, lineNo, key)
			}
			seen[key] = true
		}
	}
	for _, k := range []string{"pkgname", "pkgver", "arch"} {
		if !seen[k] {
			return nil, fmt.Errorf("%w: missing %s", ErrPkgInfo, k)
		}
	}
	if p.Name == "" || p.Version == "" || p.Arch == "" {
		return nil, fmt.Errorf("%w: empty pkgname, pkgver or arch", ErrPkgInfo)
	}
	return p, nil
}

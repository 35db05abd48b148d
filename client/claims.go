package client

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/vouchdev/vouch/apk"
	"github.com/vouchdev/vouch/client/imagefs"
	vouchv1 "github.com/vouchdev/vouch/proto/vouch/v1"
)

// Errors about inputs. Each one is a refusal to build claims: the builder's
// view of what it installed is inconsistent, so nothing is sent.
var (
	// ErrInput reports an input that cannot be turned into claims: an
	// unreadable or malformed .apk, lock file or installed database.
	ErrInput = errors.New("invalid input")
	// ErrArch reports a noarch package without an arch to claim it for, or
	// an --arch that contradicts a package's own arch.
	ErrArch = fmt.Errorf("%w: architecture", ErrInput)
	// ErrRepository reports an input that does not say which repository its
	// packages came from, and no repository was given.
	ErrRepository = fmt.Errorf("%w: repository unknown", ErrInput)
	// ErrLockMismatch reports a lock file that disagrees with the .apk files
	// it is checked against: a missing file, or another checksum, datahash,
	// name or version. The message names the package.
	ErrLockMismatch = errors.New("lock file disagrees with the package files")
)

// DefaultMaxControl is the largest control member sent with a claim; it
// matches the server's default limit (max_control_bytes).
const DefaultMaxControl = 64 << 10

// APKOptions control ClaimsFromAPKs.
type APKOptions struct {
	// Repository is the repository URL the files were fetched from.
	// Required.
	Repository string
	// Arch is the architecture of the index the packages were installed
	// from. Required for noarch packages; for others it MUST equal the
	// package's own arch when set.
	Arch string
	// Control sends each package's raw control member (when at most
	// MaxControl bytes) so that the server checks .PKGINFO itself.
	Control bool
	// MaxControl bounds the control member sent; 0 means DefaultMaxControl.
	MaxControl int64
	// Workers digests that many files at once; 0 means GOMAXPROCS.
	Workers int
	// Progress, when set, is called after each file (from one goroutine at
	// a time) with the number done and the total.
	Progress func(done, total int)
}

// Digest is one .apk file's digests as a claim needs them.
type Digest struct {
	Path     string
	Name     string
	Version  string
	Arch     string // .PKGINFO arch, possibly "noarch"
	Checksum apk.Checksum
	DataHash string // hex SHA-256 of the data part (verified against .PKGINFO)
	Control  []byte // raw control member when requested and small enough
}

// DigestAPK streams one .apk file once (apk.ReadPackage): the Q1 identity
// of its control member and its data hash, which MUST equal the .PKGINFO
// datahash (a package whose data was altered, or that has none, is
// refused). With maxControl > 0 the control member is read back when it is
// at most maxControl bytes.
func DigestAPK(p string, maxControl int64) (*Digest, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInput, err)
	}
	defer f.Close()
	pkg, err := apk.ReadPackage(f, apk.PackageOptions{})
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrInput, p, err)
	}
	d := &Digest{
		Path:     p,
		Name:     pkg.Info.Name,
		Version:  pkg.Info.Version,
		Arch:     pkg.Info.Arch,
		Checksum: pkg.Checksum,
		DataHash: hex.EncodeToString(pkg.DataSHA256[:]),
	}
	if maxControl > 0 && pkg.Control.Size <= maxControl {
		d.Control = make([]byte, pkg.Control.Size)
		if _, err := f.ReadAt(d.Control, pkg.Control.Offset); err != nil {
			return nil, fmt.Errorf("%w: %s: reading control member: %v", ErrInput, p, err)
		}
	}
	return d, nil
}

// ClaimsFromAPKs digests the .apk files (in parallel, each streamed once)
// and returns one claim per file, in the order given. It stops at the first
// file that fails or when ctx is done.
func ClaimsFromAPKs(ctx context.Context, paths []string, o APKOptions) ([]*vouchv1.PackageClaim, error) {
	if o.Repository == "" {
		return nil, fmt.Errorf("%w: give the repository URL the packages came from", ErrRepository)
	}
	maxControl := int64(0)
	if o.Control {
		maxControl = o.MaxControl
		if maxControl == 0 {
			maxControl = DefaultMaxControl
		}
	}
	digests, err := digestAll(ctx, paths, maxControl, o.Workers, o.Progress)
	if err != nil {
		return nil, err
	}
	claims := make([]*vouchv1.PackageClaim, len(digests))
	for i, d := range digests {
		arch, err := claimArch(d.Name, d.Arch, o.Arch)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", d.Path, err)
		}
		claims[i] = &vouchv1.PackageClaim{
			Name:       d.Name,
			Version:    d.Version,
			Arch:       arch,
			Repository: o.Repository,
			Checksum:   d.Checksum.String(),
			Datahash:   d.DataHash,
			Control:    d.Control,
		}
	}
	return claims, nil
}

// claimArch is the arch to claim: the package's own unless it is noarch,
// which needs want.
func claimArch(name, own, want string) (string, error) {
	switch {
	case own == "noarch" && want == "":
		return "", fmt.Errorf("%w: %s is noarch: say which arch's index it was installed from (--arch)", ErrArch, name)
	case own == "noarch":
		return want, nil
	case want != "" && want != own:
		return "", fmt.Errorf("%w: %s is built for %s, not %s", ErrArch, name, own, want)
	default:
		return own, nil
	}
}

func digestAll(ctx context.Context, paths []string, maxControl int64, workers int, progress func(int, int)) ([]*Digest, error) {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = min(workers, len(paths))
	out := make([]*Digest, len(paths))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu       sync.Mutex
		firstErr error
		done     int
		wg       sync.WaitGroup
	)
	next := make(chan int)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				d, err := DigestAPK(paths[i], maxControl)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
					cancel()
				}
				out[i] = d
				done++
				if progress != nil {
					progress(done, len(paths))
				}
				mu.Unlock()
			}
		}()
	}
feed:
	for i := range paths {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// LockOptions control ClaimsFromLock.
type LockOptions struct {
	// Repository, when set, is claimed for every package instead of the
	// repository derived from each package URL.
	Repository string
	// APKDir, when set, holds the .apk files the lock describes (as
	// <dir>/<file>, <dir>/<arch>/<file> or <name>-<version>.apk in either).
	// Each is digested and MUST agree with the lock (ErrLockMismatch).
	APKDir string
	// Workers and Progress as in APKOptions (for APKDir).
	Workers  int
	Progress func(done, total int)
}

// lockFile is the part of an apko lock file (APK-FORMAT §5) that claims
// need.
type lockFile struct {
	Version  string `json:"version"`
	Contents struct {
		Packages []lockPackage `json:"packages"`
	} `json:"contents"`
}

type lockPackage struct {
	Name         string `json:"name"`
	URL          string `json:"url"`
	Version      string `json:"version"`
	Architecture string `json:"architecture"`
	Checksum     string `json:"checksum"`
	Data         struct {
		Checksum string `json:"checksum"`
	} `json:"data"`
}

// maxLock bounds a lock file.
const maxLock = 64 << 20

// ClaimsFromLock reads an apko lock file and returns one claim per locked
// package, in lock order: name, version, architecture and checksum as
// written, the datahash from data.checksum ("sha256-<base64>", as hex) and
// the repository from the package URL without its "/<arch>/<file>.apk"
// tail (or o.Repository). A lock without the Q1 checksum (apko before 0.13)
// is refused: regenerate it.
func ClaimsFromLock(ctx context.Context, r io.Reader, o LockOptions) ([]*vouchv1.PackageClaim, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxLock+1))
	if err != nil {
		return nil, fmt.Errorf("%w: reading lock file: %v", ErrInput, err)
	}
	if len(b) > maxLock {
		return nil, fmt.Errorf("%w: lock file over %d bytes", ErrInput, maxLock)
	}
	var lf lockFile
	if err := json.Unmarshal(b, &lf); err != nil {
		return nil, fmt.Errorf("%w: lock file: %v", ErrInput, err)
	}
	if lf.Version != "v1" {
		return nil, fmt.Errorf("%w: lock file version %q; want \"v1\"", ErrInput, lf.Version)
	}
	if len(lf.Contents.Packages) == 0 {
		return nil, fmt.Errorf("%w: lock file lists no packages", ErrInput)
	}
	claims := make([]*vouchv1.PackageClaim, 0, len(lf.Contents.Packages))
	for i, p := range lf.Contents.Packages {
		where := fmt.Sprintf("lock package %d (%s)", i, p.Name)
		if p.Name == "" || p.Version == "" || p.Architecture == "" {
			return nil, fmt.Errorf("%w: %s lacks name, version or architecture", ErrInput, where)
		}
		if p.Checksum == "" {
			return nil, fmt.Errorf("%w: %s has no checksum: the lock predates apko 0.13, please regenerate it", ErrInput, where)
		}
		if _, err := apk.ParseChecksum(p.Checksum); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrInput, where, err)
		}
		var datahash string
		if p.Data.Checksum != "" {
			b64, ok := strings.CutPrefix(p.Data.Checksum, "sha256-")
			raw, err := base64.StdEncoding.DecodeString(b64)
			if !ok || err != nil || len(raw) != 32 {
				return nil, fmt.Errorf("%w: %s: data.checksum %q is not sha256-<base64 of 32 bytes>", ErrInput, where, p.Data.Checksum)
			}
			datahash = hex.EncodeToString(raw)
		}
		repo := o.Repository
		if repo == "" {
			repo = repositoryFromURL(p.URL, p.Architecture)
		}
		if repo == "" {
			return nil, fmt.Errorf("%w: %s has no usable url", ErrRepository, where)
		}
		claims = append(claims, &vouchv1.PackageClaim{
			Name:       p.Name,
			Version:    p.Version,
			Arch:       p.Architecture,
			Repository: repo,
			Checksum:   p.Checksum,
			Datahash:   datahash,
		})
	}
	if o.APKDir != "" {
		if err := checkLockFiles(ctx, lf.Contents.Packages, claims, o); err != nil {
			return nil, err
		}
	}
	return claims, nil
}

// repositoryFromURL strips "/<file>.apk" and then "/<arch>" from a package
// URL: the repository base that apk appends "<arch>/APKINDEX.tar.gz" to.
// The rest is kept as written (a relative "./x" stays relative).
func repositoryFromURL(u, arch string) string {
	i := strings.LastIndex(u, "/")
	if i <= 0 {
		return ""
	}
	dir := u[:i]
	if rest, ok := strings.CutSuffix(dir, "/"+arch); ok && rest != "" {
		dir = rest
	}
	return dir
}

// checkLockFiles digests the files behind the lock and compares.
func checkLockFiles(ctx context.Context, pkgs []lockPackage, claims []*vouchv1.PackageClaim, o LockOptions) error {
	paths := make([]string, len(pkgs))
	for i, p := range pkgs {
		found := ""
		for _, name := range []string{path.Base(p.URL), p.Name + "-" + p.Version + ".apk"} {
			for _, c := range []string{filepath.Join(o.APKDir, name), filepath.Join(o.APKDir, p.Architecture, name)} {
				if st, err := os.Stat(c); err == nil && st.Mode().IsRegular() {
					found = c
					break
				}
			}
			if found != "" {
				break
			}
		}
		if found == "" {
			return fmt.Errorf("%w: %s-%s (%s): no .apk file in %s", ErrLockMismatch, p.Name, p.Version, p.Architecture, o.APKDir)
		}
		paths[i] = found
	}
	digests, err := digestAll(ctx, paths, 0, o.Workers, o.Progress)
	if err != nil {
		return err
	}
	for i, d := range digests {
		c := claims[i]
		want, _ := apk.ParseChecksum(c.Checksum)
		switch {
		case d.Name != c.Name || d.Version != c.Version:
			return fmt.Errorf("%w: %s-%s: %s is %s-%s", ErrLockMismatch, c.Name, c.Version, d.Path, d.Name, d.Version)
		case !d.Checksum.Equal(want):
			return fmt.Errorf("%w: %s-%s: lock checksum %s, file %s has %s", ErrLockMismatch, c.Name, c.Version, c.Checksum, d.Path, d.Checksum)
		case c.Datahash != "" && c.Datahash != d.DataHash:
			return fmt.Errorf("%w: %s-%s: lock datahash %s, file %s has %s", ErrLockMismatch, c.Name, c.Version, c.Datahash, d.Path, d.DataHash)
		}
		if c.Datahash == "" {
			c.Datahash = d.DataHash
		}
	}
	return nil
}

// InstalledOptions control ClaimsFromInstalled.
type InstalledOptions struct {
	// Repository, when set, is claimed for every package; otherwise
	// etc/apk/repositories MUST list exactly one repository.
	Repository string
	// Arch replaces A:noarch; otherwise etc/apk/arch does, else DefaultArch.
	Arch string
	// DefaultArch is the last resort for noarch (e.g. the image platform's).
	DefaultArch string
}

// ClaimsFromInstalled turns the apk files of a root filesystem or image
// into claims, one per installed package in database order.
func ClaimsFromInstalled(files *imagefs.Files, o InstalledOptions) ([]*vouchv1.PackageClaim, error) {
	pkgs, err := files.Packages()
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrInput, files.InstalledPath, err)
	}
	repo := o.Repository
	if repo == "" {
		repos := imagefs.ParseRepositories(files.Repositories)
		switch len(repos) {
		case 1:
			repo = repos[0]
		case 0:
			return nil, fmt.Errorf("%w: no %s: give the repository URL", ErrRepository, imagefs.RepositoriesPath)
		default:
			return nil, fmt.Errorf("%w: %s lists %d repositories (%s): give the one the packages came from", ErrRepository, imagefs.RepositoriesPath, len(repos), strings.Join(repos, ", "))
		}
	}
	arch := o.Arch
	if arch == "" {
		arch = files.Arch
	}
	if arch == "" {
		arch = o.DefaultArch
	}
	claims := make([]*vouchv1.PackageClaim, len(pkgs))
	for i, p := range pkgs {
		a := p.Arch
		if a == "noarch" {
			if arch == "" {
				return nil, fmt.Errorf("%w: %s is noarch: say which arch's index it was installed from (--arch)", ErrArch, p.Name)
			}
			a = arch
		}
		claims[i] = &vouchv1.PackageClaim{
			Name:       p.Name,
			Version:    p.Version,
			Arch:       a,
			Repository: repo,
			Checksum:   p.Checksum.String(),
		}
	}
	return claims, nil
}

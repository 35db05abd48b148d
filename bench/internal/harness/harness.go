// Package harness runs the real vouchd as a child process for the bench programs: build, start, health, metrics, RSS, signals and cleanup.
package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Main runs run with a context that is cancelled on SIGINT/SIGTERM, and
// afterwards (also on a panic in run) kills every child process still
// running and runs the registered cleanups, newest first. It returns the
// process exit code: 0, or 1 when run failed. A second signal kills the
// children and exits at once.
func Main(run func(ctx context.Context) error) (code int) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		n := 0
		for s := range sigs {
			n++
			fmt.Fprintf(os.Stderr, "\nreceived %v: stopping child processes\n", s)
			cancel()
			KillAll()
			if n > 1 {
				RunCleanups()
				os.Exit(130)
			}
		}
	}()
	defer func() {
		if r := recover(); r != nil {
			RunCleanups()
			panic(r)
		}
	}()
	err := run(ctx)
	RunCleanups()
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		return 1
	}
	return 0
}

var (
	cleanMu  sync.Mutex
	cleanups []func()
)

// Cleanup registers fn to run when Main returns (or panics), after every
// child process has been killed. Cleanups run newest first.
func Cleanup(fn func()) {
	cleanMu.Lock()
	defer cleanMu.Unlock()
	cleanups = append(cleanups, fn)
}

// RunCleanups kills the remaining child processes, then runs and forgets
// the registered cleanups. Safe to call more than once.
func RunCleanups() {
	KillAll()
	for {
		cleanMu.Lock()
		if len(cleanups) == 0 {
			cleanMu.Unlock()
			return
		}
		fn := cleanups[len(cleanups)-1]
		cleanups = cleanups[:len(cleanups)-1]
		cleanMu.Unlock()
		fn()
	}
}

// TempDir creates a work directory that is removed at cleanup unless keep
// is set (then its path is printed).
func TempDir(prefix string, keep bool) (string, error) {
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return "", fmt.Errorf("creating work directory: %w", err)
	}
	Cleanup(func() {
		if keep {
			fmt.Fprintf(os.Stderr, "work directory kept: %s\n", dir)
			return
		}
		_ = os.RemoveAll(dir)
	})
	return dir, nil
}

// ModuleRoot returns the directory of the vouch module that the working
// directory belongs to.
func ModuleRoot(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("not inside a Go module: run from the vouch repository")
	}
	return filepath.Dir(mod), nil
}

// Header returns the lines every bench program prints first: date, commit,
// Go version and CPU count.
func Header(ctx context.Context, title string) string {
	commit := "unknown"
	if root, err := ModuleRoot(ctx); err == nil {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		out, err := exec.CommandContext(cctx, "git", "-C", root, "rev-parse", "--short", "HEAD").Output()
		cancel()
		if err == nil {
			commit = strings.TrimSpace(string(out))
		}
	}
	return fmt.Sprintf("# %s\n\n- date: %s\n- commit: %s\n- go: %s %s/%s\n- nproc: %d\n",
		title, time.Now().Format(time.RFC3339), commit, runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU())
}

// BuildVouchd compiles cmd/vouchd into dir and returns the binary's path.
// A non-empty prebuilt path is returned as is after checking it exists.
func BuildVouchd(ctx context.Context, dir, prebuilt string) (string, error) {
	if prebuilt != "" {
		if _, err := os.Stat(prebuilt); err != nil {
			return "", fmt.Errorf("vouchd binary: %w", err)
		}
		return prebuilt, nil
	}
	root, err := ModuleRoot(ctx)
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "vouchd")
	ctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/vouchd")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOTOOLCHAIN=local")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/vouchd: %w\n%s", err, out)
	}
	return bin, nil
}

// FreeAddr returns a loopback address with a port that was free a moment
// ago.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("finding a free port: %w", err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		return "", fmt.Errorf("finding a free port: %w", err)
	}
	return addr, nil
}

// Proc is a running (or finished) vouchd child process.
type Proc struct {
	Name    string
	Started time.Time // just before the process was started
	LogPath string    // stdout and stderr
	cmd     *exec.Cmd
	done    chan struct{}
	state   *os.ProcessState
	waitErr error
}

var (
	procMu sync.Mutex
	procs  = map[*Proc]struct{}{}
)

// KillAll sends SIGKILL to every child process still running and waits
// (briefly) for each to exit.
func KillAll() {
	procMu.Lock()
	live := make([]*Proc, 0, len(procs))
	for p := range procs {
		live = append(live, p)
	}
	procMu.Unlock()
	for _, p := range live {
		_ = p.Kill(5 * time.Second)
	}
}

// Start runs bin --config cfgPath with output appended to logPath. The
// child gets its own process group (a terminal's Ctrl-C reaches only the
// bench program, which then kills it) and SIGKILL when the bench program
// dies.
func Start(name, bin, cfgPath, logPath string) (*Proc, error) {
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("starting %s: log file: %w", name, err)
	}
	cmd := exec.Command(bin, "--config", cfgPath)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	p := &Proc{Name: name, LogPath: logPath, cmd: cmd, done: make(chan struct{})}
	p.Started = time.Now()
	if err := cmd.Start(); err != nil {
		_ = lf.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	procMu.Lock()
	procs[p] = struct{}{}
	procMu.Unlock()
	go func() {
		p.waitErr = cmd.Wait()
		p.state = cmd.ProcessState
		_ = lf.Close()
		procMu.Lock()
		delete(procs, p)
		procMu.Unlock()
		close(p.done)
	}()
	return p, nil
}

// Pid is the child's process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Done is closed once the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// ExitStatus describes how the process ended ("exit status 0", "signal:
// killed"), or "running".
func (p *Proc) ExitStatus() string {
	if !p.Exited() {
		return "running"
	}
	if p.state != nil {
		return p.state.String()
	}
	return fmt.Sprint(p.waitErr)
}

// ExitCode is the exit code, -1 when killed by a signal or still running.
func (p *Proc) ExitCode() int {
	if !p.Exited() || p.state == nil {
		return -1
	}
	return p.state.ExitCode()
}

// Kill sends SIGKILL and waits up to timeout for the exit.
func (p *Proc) Kill(timeout time.Duration) error {
	if p.Exited() {
		return nil
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("SIGKILL %s: %w", p.Name, err)
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("%s (pid %d) did not exit within %s of SIGKILL", p.Name, p.Pid(), timeout)
	}
}

// Term sends SIGTERM and waits up to timeout for a graceful exit, then
// kills. It returns how long the shutdown took and an error when the
// process had to be killed or did not exit with status 0.
func (p *Proc) Term(timeout time.Duration) (time.Duration, error) {
	if p.Exited() {
		return 0, fmt.Errorf("%s had already exited (%s)", p.Name, p.ExitStatus())
	}
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return 0, fmt.Errorf("SIGTERM %s: %w", p.Name, err)
	}
	select {
	case <-p.done:
		took := time.Since(start)
		if p.ExitCode() != 0 {
			return took, fmt.Errorf("%s exited with %s after SIGTERM", p.Name, p.ExitStatus())
		}
		return took, nil
	case <-time.After(timeout):
		_ = p.Kill(5 * time.Second)
		return time.Since(start), fmt.Errorf("%s did not stop within %s of SIGTERM; killed", p.Name, timeout)
	}
}

// TailLog returns the last n lines of the process log.
func (p *Proc) TailLog(n int) string {
	return TailFile(p.LogPath, n)
}

// TailFile returns the last n lines of a file ("" when unreadable).
func TailFile(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	const maxRead = 64 << 10
	if fi, err := f.Stat(); err == nil && fi.Size() > maxRead {
		_, _ = f.Seek(fi.Size()-maxRead, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// failure adds the process state and its log tail to err.
func (p *Proc) failure(err error) error {
	return fmt.Errorf("%s (%s): %w\n--- last lines of %s ---\n%s", p.Name, p.ExitStatus(), err, p.LogPath, p.TailLog(20))
}

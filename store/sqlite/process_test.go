package sqlite_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/vouchdev/vouch/store"
	"github.com/vouchdev/vouch/store/sqlite"
	"github.com/vouchdev/vouch/store/storetest"
)

func reopen(ctx context.Context, target string, beforeCommit func(op string)) (store.Store, error) {
	cfg, err := sqlite.ParseURL(target)
	if err != nil {
		return nil, err
	}
	cfg.BeforeCommit = beforeCommit
	return sqlite.Open(ctx, cfg)
}

func TestMain(m *testing.M) {
	if path := os.Getenv(sqlite.EnvRunCrashForTest); path != "" {
		if err := sqlite.RunCrashChildForTest(path); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
		os.Exit(1)
	}
	storetest.ChildMain(reopen)
	os.Exit(m.Run())
}

// TestCrash kills writers with SIGKILL inside their transactions.
func TestCrash(t *testing.T) {
	storetest.Crash(t, "sqlite://"+filepath.Join(t.TempDir(), "vouch.db"), reopen)
}

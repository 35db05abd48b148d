package postgres_test

import (
	"context"
	"os"
	"testing"

	"github.com/vouchdev/vouch/store"
	"github.com/vouchdev/vouch/store/postgres"
	"github.com/vouchdev/vouch/store/storetest"
)

func reopen(ctx context.Context, target string, beforeCommit func(op string)) (store.Store, error) {
	cfg, err := postgres.ParseURL(target)
	if err != nil {
		return nil, err
	}
	cfg.BeforeCommit = beforeCommit
	return postgres.Open(ctx, cfg)
}

func TestMain(m *testing.M) {
	storetest.ChildMain(reopen)
	os.Exit(m.Run())
}

// TestCrash kills writers with SIGKILL inside their transactions.
func TestCrash(t *testing.T) {
	dsn := testDSN(t)
	storetest.Crash(t, withSchema(t, dsn, newSchema(t, dsn)), reopen)
}

// TestTwoProcessRefresh runs two replica processes refreshing one
// repository at once: one fetch, both serve the result.
func TestTwoProcessRefresh(t *testing.T) {
	dsn := testDSN(t)
	storetest.TwoProcessRefresh(t, withSchema(t, dsn, newSchema(t, dsn)), reopen)
}

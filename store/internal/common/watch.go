package common

import (
	"context"
	"sync"

	"github.com/vouchdev/vouch/store"
)

// Broadcaster fans snapshot notices out to in-process watchers. The zero
// value is ready to use.
type Broadcaster struct {
	mu   sync.Mutex
	subs map[chan store.SnapshotNotice]struct{}
}

// Watch registers a watcher until ctx is done.
func (b *Broadcaster) Watch(ctx context.Context) <-chan store.SnapshotNotice {
	ch := make(chan store.SnapshotNotice, 16)
	b.mu.Lock()
	if b.subs == nil {
		b.subs = map[chan store.SnapshotNotice]struct{}{}
	}
	b.subs[ch] = struct{}{}
	b.mu.Unlock()
	go func() {
		<-ctx.Done()
		b.mu.Lock()
		delete(b.subs, ch)
		close(ch)
		b.mu.Unlock()
	}()
	return ch
}

// Publish delivers n to every watcher whose buffer has room; notices to a
// slow watcher are dropped (notices are hints).
func (b *Broadcaster) Publish(n store.SnapshotNotice) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for ch := range b.subs {
		select {
		case ch <- n:
		default:
		}
	}
}

// LockSet is a set of in-process try-locks by key.
type LockSet struct {
	mu   sync.Mutex
	held map[string]bool
}

// TryLock takes key if free; unlock releases it once.
func (l *LockSet) TryLock(key string) (unlock func(), ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.held == nil {
		l.held = map[string]bool{}
	}
	if l.held[key] {
		return nil, false
	}
	l.held[key] = true
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			delete(l.held, key)
			l.mu.Unlock()
		})
	}, true
}

package etcdsource

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/sluice-dev/sluice/internal/etcdtest"
	"github.com/sluice-dev/sluice/pkg/config"
)

const key = "/sluice/config.yaml"

func docWithIdle(n int) string {
	return strings.Replace(doc1, "    chain:", "    idle_timeout: "+time.Duration(n*int(time.Second)).String()+"\n    chain:", 1)
}

// applier stands in for the reloader: it loads through the source and
// tells the source's hook the outcome, as Reloader.Reload does.
type applier struct {
	src  *Source
	mu   sync.Mutex
	revs []int64 // revisions applied, in order
	errs []error // failed loads
}

func (a *applier) reload(ctx context.Context) error {
	a.src.ReloadBegin(TriggerEtcd)
	cfg, err := a.src.Load(ctx)
	a.src.ReloadEnd(TriggerEtcd, err)
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		a.errs = append(a.errs, err)
		return err
	}
	_ = cfg
	a.revs = append(a.revs, a.src.Running().Revision)
	return nil
}

func (a *applier) snapshot() ([]int64, []error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]int64(nil), a.revs...), append([]error(nil), a.errs...)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func newSource(t *testing.T, etcd *etcdtest.Server, cache *Cache) *Source {
	t.Helper()
	tg, err := ParseURL(etcd.URL(key))
	if err != nil {
		t.Fatal(err)
	}
	cli, err := NewClient(tg, Access{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return New(tg, cli, cache, hclog.NewNullLogger())
}

// runWatcher runs a watcher until the test ends.
func runWatcher(t *testing.T, src *Source, a *applier) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	w := NewWatcher(src, a.reload, hclog.NewNullLogger())
	go func() {
		defer close(done)
		w.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("watcher did not stop within 10s of its context ending")
		}
	})
}

// TestWatchAppliesEachChangeOnce: every put is applied once, in order;
// an invalid one fails its load and the next valid one is applied; a
// delete applies nothing; across an etcd restart, a change made while
// etcd was down is applied once it is back, and nothing is replayed.
func TestWatchAppliesEachChangeOnce(t *testing.T) {
	etcd := etcdtest.Start(t)
	rev1 := etcd.Put(key, docWithIdle(1))
	cache := NewCache(t.TempDir() + "/last-good.yaml")
	src := newSource(t, etcd, cache)
	doc, _, err := src.Get(context.Background())
	if err != nil || doc.Revision != rev1 {
		t.Fatalf("get: %+v %v", doc, err)
	}
	src.Started(doc)
	a := &applier{src: src}
	runWatcher(t, src, a)

	waitFor(t, "the watcher connected", src.Connected)
	rev2 := etcd.Put(key, docWithIdle(2))
	waitFor(t, "revision 2 applied", func() bool { r, _ := a.snapshot(); return len(r) == 1 })
	etcd.Put(key, "listeners: [")
	waitFor(t, "the invalid put failed", func() bool { _, e := a.snapshot(); return len(e) == 1 })
	if src.Running().Revision != rev2 {
		t.Errorf("running revision %d after an invalid put, want %d", src.Running().Revision, rev2)
	}
	etcd.Delete(key)
	rev3 := etcd.Put(key, docWithIdle(3))
	waitFor(t, "revision 3 applied", func() bool { r, _ := a.snapshot(); return len(r) == 2 })

	etcd.Stop()
	waitFor(t, "the source reported down", func() bool { return !src.Connected() })
	etcd.Restart()
	rev4 := etcd.Put(key, docWithIdle(4))
	waitFor(t, "revision 4 applied after the restart", func() bool { r, _ := a.snapshot(); return len(r) == 3 })
	time.Sleep(500 * time.Millisecond) // room for a replay, which must not come
	revs, errs := a.snapshot()
	if want := []int64{rev2, rev3, rev4}; !equal(revs, want) {
		t.Errorf("applied revisions %v, want %v", revs, want)
	}
	var ce config.Errors
	if len(errs) != 1 || !errors.As(errs[0], &ce) || !strings.Contains(errs[0].Error(), etcd.URL(key)+": malformed config") {
		t.Errorf("failed loads %v, want one malformed config naming the URL", errs)
	}
	_, cached, err := cache.Load(etcd.URL(key))
	if err != nil || cached.Revision != rev4 {
		t.Errorf("cache holds revision %d (%v), want %d", cached.Revision, err, rev4)
	}
	waitFor(t, "the source reported up", src.Connected)
}

func equal(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestPublishCompareAndSwap(t *testing.T) {
	etcd := etcdtest.Start(t)
	src := newSource(t, etcd, nil)
	cli, ctx := src.Client(), context.Background()
	zero := int64(0)
	rev, err := Publish(ctx, cli, key, []byte(doc1), &zero)
	if err != nil {
		t.Fatalf("publish --if-revision 0 on a missing key: %v", err)
	}
	_, err = Publish(ctx, cli, key, []byte(doc1), &zero)
	var ce *ConflictError
	if !errors.As(err, &ce) || !errors.Is(err, ErrConflict) || ce.Got != rev {
		t.Fatalf("publish --if-revision 0 on an existing key: %v, want a conflict at %d", err, rev)
	}
	stale := rev - 1
	if _, err := Publish(ctx, cli, key, []byte(doc1), &stale); !errors.Is(err, ErrConflict) {
		t.Fatalf("publish from a stale revision: %v, want a conflict", err)
	}
	rev2, err := Publish(ctx, cli, key, []byte(docWithIdle(5)), &rev)
	if err != nil || rev2 <= rev {
		t.Fatalf("publish from the current revision: %d, %v", rev2, err)
	}
	if got := etcd.Revision(key); got != rev2 {
		t.Errorf("key at revision %d, want %d", got, rev2)
	}
	// Unconditional.
	if _, err := Publish(ctx, cli, key, []byte(doc1), nil); err != nil {
		t.Errorf("publish without --if-revision: %v", err)
	}
}

func TestGetUnreachable(t *testing.T) {
	tg, _ := ParseURL("etcd://127.0.0.1:1/k.yaml")
	cli, err := NewClient(tg, Access{})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	src := New(tg, cli, nil, hclog.NewNullLogger())
	start := time.Now()
	_, _, err = src.Get(context.Background())
	if !errors.Is(err, ErrUnreachable) {
		t.Errorf("get from nothing: %v, want unreachable", err)
	}
	if d := time.Since(start); d > Timeout+2*time.Second {
		t.Errorf("get from nothing took %v, want about %v", d, Timeout)
	}
}

package etcdsource

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/hashicorp/go-hclog"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/connectivity"
)

// TriggerEtcd names a reload caused by a change of the etcd key.
const TriggerEtcd = "etcd"

// Retry timing: a watch that ended, or a read that failed, is tried again
// after minRetry, doubling up to maxRetry, with jitter so that a fleet
// does not come back to etcd in step. The watcher never gives up while
// the process runs.
const (
	minRetry = 100 * time.Millisecond
	maxRetry = 5 * time.Second
)

var errWatchClosed = errors.New("etcd watch channel closed")

// Watcher reloads the config when its key changes. It keeps the highest
// revision it has handled: a change is applied once, after a reconnect
// too, and a watch that ended resumes from the next revision, so that
// nothing written meanwhile is missed. When the connection comes back
// (etcd restarted, the network healed), the key is read again as well,
// which also covers a history compacted meanwhile.
type Watcher struct {
	src    *Source
	reload func(ctx context.Context) error
	log    hclog.Logger

	// Owned by Run's goroutine.
	seen    int64 // highest ModRevision handled: applied, rejected or deleted
	from    int64 // the revision the next watch starts at; 0: now
	down    bool  // an outage was reported and has not ended
	missing bool  // a missing key was reported and has not come back
}

// NewWatcher returns a watcher that calls reload (Reloader.Reload with
// trigger "etcd") for each new version of src's key.
func NewWatcher(src *Source, reload func(ctx context.Context) error, log hclog.Logger) *Watcher {
	return &Watcher{src: src, reload: reload, log: log}
}

// Run watches until ctx ends.
func (w *Watcher) Run(ctx context.Context) {
	w.seen = w.src.Running().Revision
	resync := make(chan struct{}, 1)
	tracked := make(chan struct{})
	go func() {
		defer close(tracked)
		w.trackConn(ctx, resync)
	}()
	defer func() { <-tracked }() // ends with ctx

	w.log.Info("watching the etcd key for changes", "url", w.src.target.URL, "key", w.src.target.Key, "revision", w.seen)
	retry := time.Duration(0)
	synced := false
	for ctx.Err() == nil {
		if !synced {
			if err := w.sync(ctx); err != nil {
				retry = next(retry)
				if !sleep(ctx, jitter(retry), resync) {
					return
				}
				continue
			}
			synced = true
		}
		err := w.watch(ctx, resync)
		if ctx.Err() != nil {
			return
		}
		// Whatever ended the watch (a compacted history, a member
		// without leader, the channel closed), the key is read again
		// before the next watch: a change made meanwhile is applied
		// from the read, not missed.
		synced = false
		w.log.Debug("etcd watch ended; resuming", "error", err, "revision", w.from)
		retry = next(retry)
		if !sleep(ctx, jitter(retry), resync) {
			return
		}
	}
}

// sync reads the key and applies it if it is newer than what was handled.
func (w *Watcher) sync(ctx context.Context) error {
	doc, hdr, err := w.src.Get(ctx)
	switch {
	case errors.Is(err, ErrNoKey):
		w.up()
		w.from = max(w.from, hdr+1)
		w.deleted(hdr)
		return nil
	case err != nil:
		if !w.down && ctx.Err() == nil {
			w.down = true
			w.log.Warn("cannot reach etcd; keeping the running config and retrying", "url", w.src.target.URL, "error", err)
		}
		return err
	}
	w.up()
	w.from = max(w.from, hdr+1)
	w.consider(ctx, doc)
	return nil
}

func (w *Watcher) up() {
	if w.down {
		w.down = false
		w.log.Info("etcd reachable again", "url", w.src.target.URL)
	}
}

// watch runs one etcd watch until it ends or ctx does.
func (w *Watcher) watch(ctx context.Context, resync <-chan struct{}) error {
	// WithRequireLeader: a member cut off from its cluster ends the
	// watch rather than leaving it silent, so that another is tried.
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	opts := []clientv3.OpOption{}
	if w.from > 0 {
		opts = append(opts, clientv3.WithRev(w.from))
	}
	wch := w.src.cli.Watch(wctx, w.src.target.Key, opts...)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-resync:
			// The connection came back: read the key now rather than
			// wait for the watch stream to be set up again.
			_ = w.sync(ctx)
		case resp, ok := <-wch:
			if !ok {
				return errWatchClosed
			}
			if err := resp.Err(); err != nil {
				return err
			}
			if len(resp.Events) == 0 {
				continue
			}
			// Only the last event of a batch (changes made while the
			// connection was down) is the key's state now.
			ev := resp.Events[len(resp.Events)-1]
			w.from = ev.Kv.ModRevision + 1
			if ev.Type == clientv3.EventTypeDelete {
				w.deleted(ev.Kv.ModRevision)
				continue
			}
			w.consider(ctx, Document{Data: ev.Kv.Value, Revision: ev.Kv.ModRevision})
		}
	}
}

// consider applies doc unless a version at least as new was handled.
func (w *Watcher) consider(ctx context.Context, doc Document) {
	// A SIGHUP or POST /reload may have read the key since: what runs
	// is handled too.
	if doc.Revision <= max(w.seen, w.src.Running().Revision) {
		return
	}
	w.seen = doc.Revision
	if w.missing {
		w.missing = false
		w.log.Info("etcd key is back", "key", w.src.target.Key, "revision", doc.Revision)
	}
	w.src.offer(doc)
	// The reloader logs and counts the outcome; an invalid document
	// leaves the running config as it is.
	_ = w.reload(ctx)
}

// deleted reports a key that no longer exists, once: like a deleted
// config file, the running config stays.
func (w *Watcher) deleted(rev int64) {
	w.seen = max(w.seen, rev)
	if !w.missing {
		w.missing = true
		w.log.Warn("etcd key does not exist; keeping the running config", "key", w.src.target.Key, "url", w.src.target.URL)
	}
}

// trackConn follows the client's connection to etcd: it keeps Connected
// current, logs an outage once, and asks for a read of the key when the
// connection comes back.
func (w *Watcher) trackConn(ctx context.Context, resync chan<- struct{}) {
	conn := w.src.cli.ActiveConnection()
	st := conn.GetState()
	was := st == connectivity.Ready
	if was {
		w.src.connected.Store(true)
	}
	for conn.WaitForStateChange(ctx, st) {
		st = conn.GetState()
		now := st == connectivity.Ready
		switch {
		case now && !was:
			w.src.connected.Store(true)
			w.log.Info("etcd connection up", "url", w.src.target.URL)
			select {
			case resync <- struct{}{}:
			default:
			}
		case !now && was:
			w.src.connected.Store(false)
			w.log.Warn("etcd connection lost; keeping the running config and reconnecting", "url", w.src.target.URL, "state", st.String())
		}
		was = now
	}
}

func next(d time.Duration) time.Duration {
	if d == 0 {
		return minRetry
	}
	return min(2*d, maxRetry)
}

// jitter spreads d over [d, 1.5d).
func jitter(d time.Duration) time.Duration {
	return d + rand.N(d/2+1)
}

// sleep waits d, or until resync asks for a read (which it passes on) or
// ctx ends; false when ctx ended.
func sleep(ctx context.Context, d time.Duration, resync <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-resync:
		return true
	case <-t.C:
		return true
	}
}

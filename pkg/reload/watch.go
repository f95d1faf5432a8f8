package reload

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/hashicorp/go-hclog"

	"github.com/sluice-dev/sluice/pkg/config"
	"github.com/sluice-dev/sluice/pkg/filewatch"
)

// Watch timing. A save is a burst of events (vim: rename, create, write,
// chmod; a truncate-and-write: several writes), so the reload waits until
// the config's events have been quiet for Debounce, but never longer than
// MaxDelay after the first, so that a file written without pause still
// gets loaded.
const (
	Debounce = 150 * time.Millisecond
	MaxDelay = 2 * time.Second

	// Retries of a failed watch start at minRetry and double up to
	// maxRetry; the watcher never gives up while the process runs.
	minRetry = 100 * time.Millisecond
	maxRetry = 5 * time.Second

	// A reload that failed for a transient cause (descriptors or memory
	// short, a read error) is tried again after minReloadRetry, doubling
	// up to maxReloadRetry, until it succeeds, fails for another reason,
	// or the file changes again.
	minReloadRetry = 500 * time.Millisecond
	maxReloadRetry = 30 * time.Second
)

// errDirGone ends a watch whose directory was removed or moved away: the
// kernel dropped it, and it must be set up again once the directory is
// back.
var errDirGone = errors.New("the config directory was removed or moved")

// Watcher reloads the config when its file changes. It watches the
// file's directory, not the file: editors and sed -i save by writing a
// new file and renaming it over the old, and Kubernetes swaps a ConfigMap
// by re-pointing a "..data" symlink, and neither leaves a watch on the old
// file anything to report. Events are kept when they name the config
// path, or the file it resolves to, or when what the path resolves to has
// changed; so the directory of the resolved file is watched too.
type Watcher struct {
	path   string // absolute, symlinks kept: the name the operator gave
	reload func(ctx context.Context) error
	log    hclog.Logger
	// newFS makes the fsnotify watcher; tests replace it to inject
	// failures.
	newFS func() (*fsnotify.Watcher, error)

	// Owned by Run's goroutine.
	target  string          // what path resolves to; "" while it does not
	dirs    map[string]bool // directories watched now
	missing bool            // a missing file was reported and not yet back
	retry   time.Duration   // the backoff of the pending retry; 0: none
}

// NewWatcher returns a watcher that calls r.Reload with trigger "file".
func NewWatcher(r *Reloader) (*Watcher, error) {
	abs, err := filepath.Abs(r.path)
	if err != nil {
		return nil, fmt.Errorf("watching %s: %w", r.path, err)
	}
	return &Watcher{
		path: abs,
		reload: func(ctx context.Context) error {
			_, err := r.Reload(ctx, TriggerFile)
			return err
		},
		log:   r.log,
		newFS: fsnotify.NewWatcher,
	}, nil
}

// Run watches until ctx ends, and returns only then. A failed watch is
// logged and set up again, with backoff; it never stops the process. Run
// is meant to be the body of one goroutine owned by the caller.
func (w *Watcher) Run(ctx context.Context) {
	var backoff time.Duration
	started := false
	for {
		fw, err := w.open()
		switch {
		case err != nil && backoff == 0:
			w.log.Error("config watch failed; re-establishing it", "config", w.path, "error", err)
		case err != nil:
			w.log.Debug("config watch still failing; retrying", "error", err, "backoff", backoff)
		default:
			msg := "watching the config file for changes"
			if started {
				msg = "config watch re-established"
			}
			w.log.Info(msg, "config", w.path, "dirs", w.dirList())
			// After a failure, events may have been missed: check once.
			check := started || backoff != 0
			started = true
			since := time.Now()
			err = w.loop(ctx, fw, check)
			_ = fw.Close()
			if err == nil {
				return
			}
			w.log.Error("config watch failed; re-establishing it", "config", w.path, "error", err)
			if time.Since(since) > maxRetry {
				// It held a while: start over rather than keep a
				// long backoff from failures long past.
				backoff = 0
			}
		}
		backoff = min(max(2*backoff, minRetry), maxRetry)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
	}
}

// open starts a fsnotify watcher on the config's directory, and on the
// resolved file's directory when that is elsewhere.
func (w *Watcher) open() (*fsnotify.Watcher, error) {
	fw, err := w.newFS()
	if err != nil {
		return nil, fmt.Errorf("starting a file watcher: %w", err)
	}
	w.target = resolve(w.path)
	w.dirs = map[string]bool{}
	if err := fw.Add(filepath.Dir(w.path)); err != nil {
		_ = fw.Close()
		return nil, fmt.Errorf("watching %s: %w", filepath.Dir(w.path), err)
	}
	w.dirs[filepath.Dir(w.path)] = true
	w.followTarget(fw)
	return fw, nil
}

// followTarget watches the directory of the file the path resolves to,
// when that is not the config's own directory, so that a write in place
// through a symlink is seen; a directory no longer needed is dropped.
func (w *Watcher) followTarget(fw *fsnotify.Watcher) {
	primary := filepath.Dir(w.path)
	want := ""
	if w.target != "" {
		want = filepath.Dir(w.target)
		// The same directory under another name (the config directory
		// itself is a symlink) is watched already.
		if want == primary || want == resolve(primary) {
			want = ""
		}
	}
	for d := range w.dirs {
		if d != primary && d != want {
			_ = fw.Remove(d) // may be gone with its directory: nothing to undo
			delete(w.dirs, d)
		}
	}
	if want != "" && !w.dirs[want] {
		if err := fw.Add(want); err != nil {
			// The primary watch still sees renames and symlink swaps.
			w.log.Debug("cannot watch the config's target directory", "dir", want, "error", err)
			return
		}
		w.dirs[want] = true
	}
}

// loop handles events until ctx ends (nil) or the watch fails.
func (w *Watcher) loop(ctx context.Context, fw *fsnotify.Watcher, check bool) error {
	burst := filewatch.NewBurst(Debounce, MaxDelay, check)
	defer burst.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-fw.Events:
			if !ok {
				return errors.New("the file watcher stopped")
			}
			if w.dirs[filepath.Clean(ev.Name)] && ev.Has(fsnotify.Remove|fsnotify.Rename) {
				if filepath.Clean(ev.Name) == filepath.Dir(w.path) {
					return fmt.Errorf("%s: %w", ev.Name, errDirGone)
				}
				delete(w.dirs, filepath.Clean(ev.Name))
			}
			if w.concerns(ev) {
				burst.Event()
			}
		case err, ok := <-fw.Errors:
			if !ok {
				return errors.New("the file watcher stopped")
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				// The kernel dropped events, ours maybe among them.
				w.log.Warn("config watch lost events; checking the file", "config", w.path)
				burst.Event()
				continue
			}
			return err
		case <-burst.C():
			burst.Fired()
			// Watch the directory of what the path resolves to now
			// before the file is read: a write made as soon as this
			// reload is logged (into a symlink's new target, say) must
			// find the watch in place, or it would go unseen.
			w.target = resolve(w.path)
			w.followTarget(fw)
			if d := w.fire(ctx); d > 0 {
				// A new event reschedules sooner; the backoff
				// carries on if that reload fails the same way.
				burst.After(d)
			}
		}
	}
}

// concerns reports whether ev may have changed the config: it names the
// config path or the file it resolves to, or what the path resolves to is
// no longer the same (a symlink on the way was swapped). A bare chmod
// changes no content.
func (w *Watcher) concerns(ev fsnotify.Event) bool {
	if ev.Op == fsnotify.Chmod {
		return false
	}
	name := filepath.Clean(ev.Name)
	hit := name == w.path || (w.target != "" && name == w.target)
	if t := resolve(w.path); t != w.target {
		w.target = t
		hit = true
	}
	return hit
}

// fire runs after a burst has settled: it reloads, unless the file is
// gone, which an operator means as neither "stop everything" nor an error
// to act on at once (an empty file is the Reloader's to keep out). It
// returns when to try again: after a failure of a transient cause, else
// 0.
func (w *Watcher) fire(ctx context.Context) time.Duration {
	_, err := os.Stat(w.path)
	if errors.Is(err, fs.ErrNotExist) {
		if !w.missing {
			w.log.Warn("config file removed; keeping the running config until it is back", "config", w.path)
			w.missing = true
		}
		w.retry = 0
		return 0
	}
	if w.missing {
		w.missing = false
		w.log.Info("config file is back; loading it", "config", w.path)
	}
	// Any other stat error (permission denied, say) is Reload's to
	// report, with the reason, as a failed reload.
	err = w.reload(ctx)
	if err == nil || !config.Transient(err) {
		w.retry = 0
		return 0
	}
	w.retry = min(max(2*w.retry, minReloadRetry), maxReloadRetry)
	w.log.Warn("config reload failed for a transient cause; will retry", "config", w.path, "retry_in", w.retry.String(), "error", err)
	return w.retry
}

func (w *Watcher) dirList() []string { return slices.Sorted(maps.Keys(w.dirs)) }

// resolve returns the file path resolves to through every symlink, or ""
// when it cannot be resolved (it does not exist, say).
func resolve(path string) string {
	t, err := filepath.EvalSymlinks(path)
	if err != nil {
		return ""
	}
	return t
}

// Package filewatch tells its owner when any of a set of files changed,
// however the change was made: a write in place, a new file renamed over
// the old (editors, certbot, sed -i), or a symlink on the way re-pointed
// (a Kubernetes Secret or ConfigMap volume swaps its "..data" link).
//
// It watches each file's directory and the directory of the file it
// resolves to, never the file itself: a watch on a file is lost with the
// inode a rename replaces. Bursts of events are debounced into one call.
package filewatch

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/hashicorp/go-hclog"
)

// Timing. A save is a burst of events; the callback runs once they have
// been quiet for Debounce, but never later than MaxDelay after the first
// one, so that a file written without pause is still seen.
const (
	Debounce = 100 * time.Millisecond
	MaxDelay = time.Second

	minRetry = 100 * time.Millisecond
	maxRetry = 5 * time.Second
)

// Watcher calls Changed when one of Paths may have changed.
type Watcher struct {
	paths   []string // absolute, symlinks kept
	changed func()
	log     hclog.Logger

	// Owned by Run's goroutine.
	targets map[string]string // path → what it resolves to ("": nothing)
}

// New returns a watcher of paths that calls changed, from Run's
// goroutine, after each settled burst of changes. log gets the lines
// about the watch itself failing.
func New(paths []string, changed func(), log hclog.Logger) (*Watcher, error) {
	w := &Watcher{changed: changed, log: log}
	for _, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, fmt.Errorf("watching %s: %w", p, err)
		}
		if !slices.Contains(w.paths, abs) {
			w.paths = append(w.paths, abs)
		}
	}
	return w, nil
}

// Run watches until ctx ends and returns only then; it is meant to be the
// body of one goroutine owned by the caller. Once the watch is set up,
// changed is called once: the caller read the files before, and a change
// made before the watch was in place has no event. A failed watch is
// logged and set up again with backoff, and changed is called again once
// it is back, since events may have been missed meanwhile.
func (w *Watcher) Run(ctx context.Context) {
	var backoff time.Duration
	failed := false
	for {
		s, err := w.open()
		if err == nil {
			if failed {
				w.log.Info("file watch re-established", "files", w.paths)
			}
			since := time.Now()
			err = w.loop(ctx, s)
			s.close()
			if err == nil {
				return
			}
			if time.Since(since) > maxRetry {
				backoff = 0
			}
		}
		if !failed || backoff == 0 {
			w.log.Error("file watch failed; re-establishing it", "files", w.paths, "error", err)
		}
		failed = true
		backoff = min(max(2*backoff, minRetry), maxRetry)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
	}
}

// open subscribes to the process's shared inotify instance (hub.go) and
// watches the files' directories.
func (w *Watcher) open() (*sub, error) {
	s, err := subscribe()
	if err != nil {
		return nil, err
	}
	w.targets = map[string]string{}
	for _, p := range w.paths {
		d := filepath.Dir(p)
		if err := s.add(d); err != nil {
			s.close()
			return nil, fmt.Errorf("watching %s: %w", d, err)
		}
	}
	w.follow(s)
	return s, nil
}

// follow resolves every path and watches the directories of the files
// they resolve to, so that a write in place through a symlink is seen;
// target directories no longer needed are dropped.
func (w *Watcher) follow(s *sub) {
	want := map[string]bool{}
	for _, p := range w.paths {
		want[filepath.Dir(p)] = true
		t := resolve(p)
		w.targets[p] = t
		// The file's own directory under another name (the directory
		// itself is a symlink) is watched already: inotify would hand
		// both names one watch, and dropping one would drop both.
		if t != "" && filepath.Dir(t) != resolve(filepath.Dir(p)) {
			want[filepath.Dir(t)] = true
		}
	}
	for d := range s.dirs {
		if !want[d] {
			s.remove(d)
		}
	}
	for d := range want {
		if err := s.add(d); err != nil {
			// The primary watches still see renames and symlink swaps.
			w.log.Debug("cannot watch a target directory", "dir", d, "error", err)
		}
	}
}

func (w *Watcher) loop(ctx context.Context, s *sub) error {
	// The first call, for what changed before the watch was set up,
	// comes after Debounce like any other: a change under way settles.
	burst := NewBurst(Debounce, MaxDelay, true)
	defer burst.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-s.events:
			name := filepath.Clean(ev.Name)
			if _, ok := s.dirs[name]; ok && ev.Has(fsnotify.Remove|fsnotify.Rename) {
				// The kernel dropped the watch with the directory. A
				// target's directory goes with a ConfigMap swap; a
				// file's own directory must be watched again.
				if w.primary(name) {
					return fmt.Errorf("%s was removed or moved", name)
				}
				s.forget(name)
			}
			if w.concerns(ev) {
				burst.Event()
			}
		case err := <-s.errs:
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				burst.Event() // ours may be among the dropped events
				continue
			}
			return err
		case <-burst.C():
			burst.Fired()
			// Watch where the paths lead now before the callback reads
			// them, so that a write right after is not missed.
			w.follow(s)
			w.changed()
		}
	}
}

func (w *Watcher) primary(dir string) bool {
	for _, p := range w.paths {
		if filepath.Dir(p) == dir {
			return true
		}
	}
	return false
}

// concerns reports whether ev may have changed one of the files: it names
// a path or what a path resolves to, or what a path resolves to is no
// longer the same. A bare chmod changes no content.
func (w *Watcher) concerns(ev fsnotify.Event) bool {
	if ev.Op == fsnotify.Chmod {
		return false
	}
	name := filepath.Clean(ev.Name)
	hit := false
	for _, p := range w.paths {
		t := resolve(p)
		if name == p || (t != "" && name == t) || t != w.targets[p] {
			hit = true
		}
	}
	return hit
}

func resolve(path string) string {
	t, err := filepath.EvalSymlinks(path)
	if err != nil {
		return ""
	}
	return t
}

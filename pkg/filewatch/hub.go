package filewatch

import (
	"fmt"
	"path/filepath"
	"sync"

	"github.com/fsnotify/fsnotify"
)

// The watchers of a process share one inotify instance. The kernel
// allows a user 128 of them by default (fs.inotify.max_user_instances),
// and each tls handler watches its files: a config with a hundred of
// them, or fifty reloaded (the old generation still watching while the
// new one starts), would run out, and the certificates past the limit
// would no longer reload themselves.
//
// The hub holds the instance while any watcher is subscribed: it counts
// the watchers of each directory, adds a directory's watch for the first
// and removes it after the last, and passes every event to every
// subscriber, which keeps those that concern its files.
type hub struct {
	mu   sync.Mutex
	fw   *fsnotify.Watcher
	refs map[string]*dirWatch // directory → its watch while any subscriber has it
	gen  uint64               // counts the watches added
	subs map[*sub]struct{}
	done chan struct{} // closed when pump has ended
}

var shared hub

// subBuffer is how many events a subscriber may have pending; past it,
// it is told of an overflow instead, as inotify itself would, and looks
// at its files again.
const subBuffer = 64

// dirWatch is one directory's watch: how many subscribers hold it, and
// which watch it is, so that a subscriber that still holds one the
// kernel dropped (its directory was removed) cannot release the next.
type dirWatch struct {
	n   int
	gen uint64
}

// sub is one watcher's view of the shared instance.
type sub struct {
	events chan fsnotify.Event
	errs   chan error        // at most one pending: an overflow or the end
	dirs   map[string]uint64 // the directories it watches, by watch
}

// subscribe returns a new subscriber, starting the shared instance if it
// is the first.
func subscribe() (*sub, error) {
	h := &shared
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.fw == nil {
		fw, err := fsnotify.NewWatcher()
		if err != nil {
			return nil, fmt.Errorf("starting a file watcher: %w", err)
		}
		h.fw, h.refs, h.subs, h.done = fw, map[string]*dirWatch{}, map[*sub]struct{}{}, make(chan struct{})
		go h.pump(fw, h.done)
	}
	s := &sub{events: make(chan fsnotify.Event, subBuffer), errs: make(chan error, 1), dirs: map[string]uint64{}}
	h.subs[s] = struct{}{}
	return s, nil
}

// pump passes fw's events and errors to the subscribers until fw is
// closed; it is owned by the hub and ends when the last subscriber left.
func (h *hub) pump(fw *fsnotify.Watcher, done chan struct{}) {
	defer close(done)
	for {
		select {
		case ev, ok := <-fw.Events:
			if !ok {
				return
			}
			h.mu.Lock()
			if h.fw != fw {
				// The last subscriber left, and a new instance may
				// serve new ones: this one's events are no one's.
				h.mu.Unlock()
				continue
			}
			if name := filepath.Clean(ev.Name); ev.Has(fsnotify.Remove|fsnotify.Rename) && h.refs[name] != nil {
				// The kernel dropped the directory's watch with it:
				// the next subscriber to want it adds it again.
				delete(h.refs, name)
			}
			for s := range h.subs {
				select {
				case s.events <- ev:
				default:
					s.fail(fsnotify.ErrEventOverflow)
				}
			}
			h.mu.Unlock()
		case err, ok := <-fw.Errors:
			if !ok {
				return
			}
			h.mu.Lock()
			if h.fw == fw {
				for s := range h.subs {
					s.fail(err)
				}
			}
			h.mu.Unlock()
		}
	}
}

// fail hands s an error, unless one is pending already.
func (s *sub) fail(err error) {
	select {
	case s.errs <- err:
	default:
	}
}

// add watches dir for s.
func (s *sub) add(dir string) error {
	if _, ok := s.dirs[dir]; ok {
		return nil
	}
	h := &shared
	h.mu.Lock()
	defer h.mu.Unlock()
	d := h.refs[dir]
	if d == nil {
		if err := h.fw.Add(dir); err != nil {
			return err
		}
		h.gen++
		d = &dirWatch{gen: h.gen}
		h.refs[dir] = d
	}
	d.n++
	s.dirs[dir] = d.gen
	return nil
}

// remove stops watching dir for s; the watch goes with its last user.
func (s *sub) remove(dir string) {
	gen, ok := s.dirs[dir]
	if !ok {
		return
	}
	delete(s.dirs, dir)
	h := &shared
	h.mu.Lock()
	defer h.mu.Unlock()
	h.drop(dir, gen)
}

// forget notes that the kernel dropped dir's watch (it was removed): the
// hub has forgotten it already.
func (s *sub) forget(dir string) { delete(s.dirs, dir) }

// drop releases one hold of dir's watch gen, if that is still the watch.
func (h *hub) drop(dir string, gen uint64) {
	d := h.refs[dir]
	if d == nil || d.gen != gen {
		return
	}
	if d.n--; d.n == 0 {
		delete(h.refs, dir)
		_ = h.fw.Remove(dir) // may be gone with its directory
	}
}

// close unsubscribes s and drops its watches; the last subscriber closes
// the instance and waits for the pump to end.
func (s *sub) close() {
	h := &shared
	h.mu.Lock()
	for d, gen := range s.dirs {
		h.drop(d, gen)
	}
	s.dirs = nil
	delete(h.subs, s)
	if len(h.subs) > 0 {
		h.mu.Unlock()
		return
	}
	fw, done := h.fw, h.done
	h.fw, h.refs, h.subs, h.done = nil, nil, nil, nil
	h.mu.Unlock()
	// Closing fw ends the pump; it takes h.mu only while fw is open, and
	// fw is no longer h's, so nothing waits on the lock here.
	_ = fw.Close()
	<-done
}

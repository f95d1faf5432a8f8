package reload

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/sluice-dev/sluice/internal/saves"
)

// reloads counts every reload outcome logged so far.
func (e *env) reloads() int {
	return e.logs.count("config reloaded") + e.logs.count("config reload failed") +
		e.logs.count("config unchanged; nothing to do")
}

// settle waits long enough for a stray second reload of one save to show.
func settle() { time.Sleep(3 * Debounce) }

func TestWatchSeesEverySaveStyle(t *testing.T) {
	cases := []struct {
		name  string
		saves []saves.Style
	}{
		{"rename like sed -i", []saves.Style{saves.Rename, saves.Rename}},
		{"vim backup and write", []saves.Style{saves.Vim, saves.Vim}},
		{"truncate and write in place", []saves.Style{saves.InPlace, saves.InPlace}},
		{"kubernetes symlink swap", []saves.Style{saves.Symlink, saves.Symlink}},
		{"in place through the symlink", []saves.Style{saves.Symlink, saves.InPlace}},
		{"symlink replaced by a file", []saves.Style{saves.Symlink, saves.Rename}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := start(t, configYAML("5s", listenerYAML("a", "127.0.0.1:0", "v0")), true)
			addr := e.addr("a")
			if got := tagOf(t, addr); got != "v0" {
				t.Fatalf("first chain answers %q", got)
			}
			for i, save := range tc.saves {
				tag := []string{"v1", "v2"}[i]
				next := configYAML("5s", listenerYAML("a", "127.0.0.1:0", tag))
				if err := save(e.path, []byte(next)); err != nil {
					t.Fatal(err)
				}
				e.waitReload(e.hashOf(next))
				if got := tagOf(t, addr); got != tag {
					t.Fatalf("save %d: new connections answered by %q, want %q", i, got, tag)
				}
				settle()
				if n := e.reloads(); n != i+1 {
					t.Fatalf("after %d saves: %d reloads, want one a save", i+1, n)
				}
			}
		})
	}
}

func TestWatchDeletedFileKeepsConfigAndRecreatedIsLoaded(t *testing.T) {
	e := start(t, configYAML("5s", listenerYAML("a", "127.0.0.1:0", "del-v1")), true)
	addr := e.addr("a")
	if err := os.Remove(e.path); err != nil {
		t.Fatal(err)
	}
	e.waitLog("config file removed; keeping the running config until it is back", 1)
	if got := tagOf(t, addr); got != "del-v1" {
		t.Fatalf("after the delete, answered by %q", got)
	}
	if n := e.reloads(); n != 0 {
		t.Fatalf("a deleted file caused %d reloads", n)
	}
	if w := e.logs.find("config file removed; keeping the running config until it is back"); w[0]["@level"] != "warn" {
		t.Fatalf("deletion logged at %v, want warn", w[0]["@level"])
	}

	next := configYAML("5s", listenerYAML("a", "127.0.0.1:0", "del-v2"))
	if err := os.WriteFile(e.path, []byte(next), 0o644); err != nil {
		t.Fatal(err)
	}
	e.waitLog("config file is back; loading it", 1)
	e.waitReload(e.hashOf(next))
	if got := tagOf(t, addr); got != "del-v2" {
		t.Fatalf("re-created file not served: answered by %q", got)
	}
}

func TestWatchEmptyFileKeepsConfig(t *testing.T) {
	e := start(t, configYAML("5s", listenerYAML("a", "127.0.0.1:0", "empty-v1")), true)
	addr := e.addr("a")
	// An empty file is refused (it says nothing); loading it as a
	// config mid-write would drop every listener.
	if err := os.Truncate(e.path, 0); err != nil {
		t.Fatal(err)
	}
	e.waitLog("config file is empty; keeping the running config", 1)
	if got := tagOf(t, addr); got != "empty-v1" {
		t.Fatalf("after truncation, answered by %q", got)
	}
	next := configYAML("5s", listenerYAML("a", "127.0.0.1:0", "empty-v2"))
	if err := saves.InPlace(e.path, []byte(next)); err != nil {
		t.Fatal(err)
	}
	e.waitReload(e.hashOf(next))
}

// TestWatchDebouncesSlowWrite writes a config in two parts with a pause
// shorter than the debounce, then rewrites it twice more at once: one
// reload, of the whole file, and no failed one for the half.
func TestWatchDebouncesSlowWrite(t *testing.T) {
	e := start(t, configYAML("5s", listenerYAML("a", "127.0.0.1:0", "slow-v1")), true)
	next := configYAML("5s", listenerYAML("a", "127.0.0.1:0", "slow-v2"), listenerYAML("b", "127.0.0.2:0", "slow-b"))
	f, err := os.OpenFile(e.path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	half := len(next) / 2
	if _, err := f.Write([]byte(next[:half])); err != nil {
		t.Fatal(err)
	}
	time.Sleep(Debounce / 5)
	if _, err := f.Write([]byte(next[half:])); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := saves.InPlace(e.path, []byte(next)); err != nil {
			t.Fatal(err)
		}
	}
	e.waitReload(e.hashOf(next))
	settle()
	if n := e.reloads(); n != 1 {
		t.Fatalf("one burst of writes made %d reloads, want 1", n)
	}
}

// TestWatchMaxDelay keeps writing without a pause as long as the
// debounce: the reload still comes, MaxDelay after the first write.
func TestWatchMaxDelay(t *testing.T) {
	e := start(t, configYAML("5s", listenerYAML("a", "127.0.0.1:0", "max-v1")), true)
	next := configYAML("5s", listenerYAML("a", "127.0.0.1:0", "max-v2"))
	deadline := time.Now().Add(3 * MaxDelay)
	for e.logs.count("config reloaded") == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("writes every %v for %v and no reload", Debounce/3, 3*MaxDelay)
		}
		// Atomic saves, so that the reload never reads half a file.
		if err := saves.Rename(e.path, []byte(next)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(Debounce / 3)
	}
	e.waitReload(e.hashOf(next))
}

func TestWatchIgnoresOtherFiles(t *testing.T) {
	e := start(t, configYAML("5s", listenerYAML("a", "127.0.0.1:0", "other-v1")), true)
	for _, name := range []string{".config.yaml.swp", "other.yaml", "config.yaml.bak"} {
		if err := os.WriteFile(filepath.Join(e.dir, name), []byte("x: 1\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Remove(filepath.Join(e.dir, "other.yaml")); err != nil {
		t.Fatal(err)
	}
	// A chmod (what touch amounts to) changes no content.
	if err := os.Chmod(e.path, 0o600); err != nil {
		t.Fatal(err)
	}
	settle()
	if n := e.reloads(); n != 0 {
		t.Fatalf("events on other files or a chmod made %d reloads", n)
	}
}

func TestWatchReestablishesAfterError(t *testing.T) {
	e := start(t, configYAML("5s", listenerYAML("a", "127.0.0.1:0", "err-v1")), false)
	var (
		mu  sync.Mutex
		fws []*fsnotify.Watcher
	)
	e.watch(func(w *Watcher) {
		w.newFS = func() (*fsnotify.Watcher, error) {
			fw, err := fsnotify.NewWatcher()
			mu.Lock()
			defer mu.Unlock()
			fws = append(fws, fw)
			return fw, err
		}
	})
	mu.Lock()
	first := fws[0]
	mu.Unlock()
	// Sent on the watcher's own channel, as its reader would: the send
	// returns once Run has taken it.
	first.Errors <- errors.New("injected failure")
	e.waitLog("config watch failed; re-establishing it", 1)
	e.waitLog("config watch re-established", 1)
	// Events may have been missed meanwhile: Run checks the file once.
	e.waitLog("config unchanged; nothing to do", 1)

	next := configYAML("5s", listenerYAML("a", "127.0.0.1:0", "err-v2"))
	if err := saves.Rename(e.path, []byte(next)); err != nil {
		t.Fatal(err)
	}
	e.waitReload(e.hashOf(next))
	if got := tagOf(t, e.addr("a")); got != "err-v2" {
		t.Fatalf("answered by %q after re-established watch", got)
	}
}

func TestWatchRetriesUntilWatcherStarts(t *testing.T) {
	e := start(t, configYAML("5s", listenerYAML("a", "127.0.0.1:0", "retry-v1")), false)
	fails := 3
	e.watch(func(w *Watcher) {
		w.newFS = func() (*fsnotify.Watcher, error) {
			if fails > 0 {
				fails--
				return nil, errors.New("too many open files")
			}
			return fsnotify.NewWatcher()
		}
	})
	if n := e.logs.count("config watch failed; re-establishing it"); n != 1 {
		t.Fatalf("a failing start logged %d errors, want 1 until it works", n)
	}
	next := configYAML("5s", listenerYAML("a", "127.0.0.1:0", "retry-v2"))
	if err := saves.Rename(e.path, []byte(next)); err != nil {
		t.Fatal(err)
	}
	e.waitReload(e.hashOf(next))
}

func TestWatchSurvivesDirectoryRemoval(t *testing.T) {
	e := start(t, configYAML("5s", listenerYAML("a", "127.0.0.1:0", "dir-v1")), true)
	addr := e.addr("a")
	if err := os.RemoveAll(e.dir); err != nil {
		t.Fatal(err)
	}
	e.waitLog("config watch failed; re-establishing it", 1)
	if got := tagOf(t, addr); got != "dir-v1" {
		t.Fatalf("answered by %q without its directory", got)
	}
	next := configYAML("5s", listenerYAML("a", "127.0.0.1:0", "dir-v2"))
	if err := os.Mkdir(e.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.path, []byte(next), 0o644); err != nil {
		t.Fatal(err)
	}
	e.waitLog("config watch re-established", 1)
	e.waitReload(e.hashOf(next))
	if got := tagOf(t, addr); got != "dir-v2" {
		t.Fatalf("answered by %q after the directory came back", got)
	}
}

// TestWatchSeesAWriteMadeAsTheReloadIsLogged: a save into a symlink's new
// target made the moment the previous reload is done (as an operator's
// script or a test does once it sees "config reloaded") is seen. The
// watch on the new target's directory must be in place before the file
// is read, not after.
func TestWatchSeesAWriteMadeAsTheReloadIsLogged(t *testing.T) {
	e := start(t, configYAML("5s", listenerYAML("a", "127.0.0.1:0", "race-v0")), false)
	first := configYAML("5s", listenerYAML("a", "127.0.0.1:0", "race-v1"))
	second := configYAML("5s", listenerYAML("a", "127.0.0.1:0", "race-v2"))
	var once sync.Once
	e.watch(func(w *Watcher) {
		reload := w.reload
		w.reload = func(ctx context.Context) error {
			err := reload(ctx)
			// Right after the symlink swap's reload, before the watcher
			// gets back to its loop: write in place through the link,
			// into the directory the swap brought.
			once.Do(func() {
				if err := saves.InPlace(e.path, []byte(second)); err != nil {
					t.Error(err)
				}
			})
			return err
		}
	})
	if err := saves.Symlink(e.path, []byte(first)); err != nil {
		t.Fatal(err)
	}
	e.waitReload(e.hashOf(first))
	e.waitReload(e.hashOf(second))
	if got := tagOf(t, e.addr("a")); got != "race-v2" {
		t.Fatalf("answered by %q after the write", got)
	}
}

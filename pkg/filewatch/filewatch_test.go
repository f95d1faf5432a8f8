package filewatch_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.uber.org/goleak"

	"github.com/sluice-dev/sluice/pkg/filewatch"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// watch runs a watcher of paths until the test ends; each call of its
// callback is sent on the returned channel.
func watch(t *testing.T, paths ...string) (<-chan struct{}, func() string) {
	t.Helper()
	calls := make(chan struct{}, 100)
	var logBuf strings.Builder
	var mu sync.Mutex
	log := hclog.New(&hclog.LoggerOptions{Output: &lockedWriter{w: &logBuf, mu: &mu}, Level: hclog.Debug})
	w, err := filewatch.New(paths, func() { calls <- struct{}{} }, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	// The first call says the watch is set up.
	select {
	case <-calls:
	case <-time.After(5 * time.Second):
		t.Fatal("no first call once the watch was set up")
	}
	return calls, func() string {
		mu.Lock()
		defer mu.Unlock()
		return logBuf.String()
	}
}

type lockedWriter struct {
	w  *strings.Builder
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// called waits for one call within 3 s, then for the burst to settle,
// and fails when none came or more than one did.
func called(t *testing.T, calls <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-calls:
	case <-time.After(3 * time.Second):
		t.Fatalf("%s: no call within 3s", what)
	}
	select {
	case <-calls:
		t.Fatalf("%s: called twice for one change", what)
	case <-time.After(3 * filewatch.Debounce):
	}
}

func notCalled(t *testing.T, calls <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-calls:
		t.Fatalf("%s: called, want no call", what)
	case <-time.After(5 * filewatch.Debounce):
	}
}

func TestChangesSeen(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.pem"), filepath.Join(dir, "b.key")
	write(t, a, "1")
	write(t, b, "1")
	calls, _ := watch(t, a, b)

	write(t, a, "2")
	write(t, b, "2")
	called(t, calls, "writes in place of both files")

	write(t, filepath.Join(dir, "tmp"), "3")
	if err := os.Rename(filepath.Join(dir, "tmp"), a); err != nil {
		t.Fatal(err)
	}
	called(t, calls, "a rename over a")

	write(t, filepath.Join(dir, "other"), "x")
	if err := os.Chmod(a, 0o600); err != nil {
		t.Fatal(err)
	}
	notCalled(t, calls, "another file of the directory, and a chmod")

	if err := os.Remove(b); err != nil {
		t.Fatal(err)
	}
	called(t, calls, "b removed")
	write(t, b, "back")
	called(t, calls, "b back")
}

// TestSymlinkSwap: a Kubernetes volume's "..data" swap is seen, twice,
// though the old target directory is removed each time; and a write in
// place into the current target is seen too.
func TestSymlinkSwap(t *testing.T) {
	dir := t.TempDir()
	gen := func(n string) {
		if err := os.Mkdir(filepath.Join(dir, n), 0o755); err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(dir, n, "tls.crt"), n)
	}
	gen("..g1")
	if err := os.Symlink("..g1", filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("..data/tls.crt", filepath.Join(dir, "tls.crt")); err != nil {
		t.Fatal(err)
	}
	calls, log := watch(t, filepath.Join(dir, "tls.crt"))
	for i, n := range []string{"..g2", "..g3"} {
		gen(n)
		if err := os.Symlink(n, filepath.Join(dir, "..tmp")); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(dir, "..tmp"), filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
		if err := os.RemoveAll(filepath.Join(dir, []string{"..g1", "..g2"}[i])); err != nil {
			t.Fatal(err)
		}
		called(t, calls, "swap to "+n)
	}
	write(t, filepath.Join(dir, "..g3", "tls.crt"), "in place")
	called(t, calls, "a write into the target")
	if strings.Contains(log(), "file watch failed") {
		t.Errorf("the watch failed:\n%s", log())
	}
}

// TestDirectoryIsASymlink: the files' directory is itself a symlink
// (/etc/sluice/tls → /srv/tls): writes in place and renames are seen.
func TestDirectoryIsASymlink(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(t.TempDir(), "tls")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "a.pem"), "1")
	calls, log := watch(t, filepath.Join(link, "a.pem"))
	write(t, filepath.Join(link, "a.pem"), "2")
	called(t, calls, "a write in place")
	write(t, filepath.Join(dir, "tmp"), "3")
	if err := os.Rename(filepath.Join(dir, "tmp"), filepath.Join(dir, "a.pem")); err != nil {
		t.Fatal(err)
	}
	called(t, calls, "a rename over it")
	write(t, filepath.Join(link, "a.pem"), "4")
	called(t, calls, "a write in place after the rename")
	if strings.Contains(log(), "file watch failed") {
		t.Errorf("the watch failed:\n%s", log())
	}
}

// TestOneInstanceForAll: watchers share one inotify instance, so that
// more of them than a user may have instances (128 by default) all work,
// and the instance goes with the last of them.
func TestOneInstanceForAll(t *testing.T) {
	const n = 130
	base := t.TempDir()
	var calls []<-chan struct{}
	var files []string
	for i := range n {
		dir := filepath.Join(base, fmt.Sprint(i))
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(dir, "cert.pem")
		write(t, f, "v1")
		files = append(files, f)
		c, _ := watch(t, f)
		calls = append(calls, c)
	}
	if got := inotifyInstances(t); got != 1 {
		t.Errorf("%d inotify instances for %d watchers, want 1", got, n)
	}
	write(t, files[n-1], "v2")
	called(t, calls[n-1], "the last watcher's file changed")
	notCalled(t, calls[0], "another watcher's file changed")
}

// inotifyInstances counts this process's inotify descriptors.
func inotifyInstances(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd here")
	}
	n := 0
	for _, fd := range fds {
		if l, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name())); err == nil && l == "anon_inode:inotify" {
			n++
		}
	}
	return n
}

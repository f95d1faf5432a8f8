package listener

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func listenUnixT(t *testing.T, path string, mode uint32) net.Listener {
	t.Helper()
	ln, err := ListenStream(context.Background(), Spec{Network: "unix", Address: path, Mode: mode})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	return ln
}

// victim is a file that is not sluice's, with mode 0600.
func victim(t *testing.T) string {
	t.Helper()
	v := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(v, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	return v
}

func wantMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != want {
		t.Errorf("%s: %v, %v; want mode %v", path, fi.Mode(), err, want)
	}
}

// A symlink at the path is refused at bind, never followed or removed.
func TestUnixRefusesSymlink(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	v := victim(t)
	if err := os.Symlink(v, path); err != nil {
		t.Fatal(err)
	}
	_, err := ListenStream(context.Background(), Spec{Network: "unix", Address: path, Mode: 0o666})
	if err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("listen over a symlink: %v, want 'not a socket'", err)
	}
	if fi, err := os.Lstat(path); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("symlink changed: %v, %v", fi, err)
	}
	wantMode(t, v, 0o600)
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 1 {
		t.Errorf("files left behind: %v", ents)
	}
}

// Chmod changes the socket it bound, and refuses anything swapped in at
// the path: a symlink (whose target is left alone) or another socket.
func TestUnixChmodOnlyOwnSocket(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s.sock")
	ln := listenUnixT(t, path, 0o600)
	c := ln.(interface{ Chmod(os.FileMode) error })
	if err := c.Chmod(0o640); err != nil {
		t.Fatalf("chmod own socket: %v", err)
	}
	wantMode(t, path, 0o640)

	v := victim(t)
	if err := os.Rename(path, filepath.Join(dir, "moved")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(v, path); err != nil {
		t.Fatal(err)
	}
	if err := c.Chmod(0o666); !errors.Is(err, ErrReplaced) {
		t.Errorf("chmod through a symlink: %v, want ErrReplaced", err)
	}
	wantMode(t, v, 0o600)

	// Another socket at the path: not ours either.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	other, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := c.Chmod(0o666); !errors.Is(err, ErrReplaced) {
		t.Errorf("chmod of a foreign socket: %v, want ErrReplaced", err)
	}
	wantMode(t, path, 0o600)

	// And Close removes neither.
	_ = ln.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Errorf("foreign socket removed on close: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "moved")); err != nil {
		t.Errorf("moved socket: %v", err)
	}
}

// A bound socket is never renamed over a file that appeared at the path
// after the stale check, and the private directory goes away after.
func TestUnixRenameNeverReplaces(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s.sock")
	d, err := openDir(path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.close()
	p, err := d.mkPrivate()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", p.bindPath())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := os.WriteFile(path, []byte("appeared"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := renameNoReplace(p.fd, privSock, d.fd, d.base); err == nil {
		t.Fatal("rename replaced a file that appeared at the path")
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "appeared" {
		t.Errorf("file at the path: %q, %v", b, err)
	}
	p.remove()
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("private directory left behind: %v", ents)
	}
}

// closed tells an open listener from a closed one without waiting.
func TestClosedProbe(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	handle := func(c net.Conn) { c.Close(); t.Error("closed() handed out a connection") }
	if closed(ln, handle) {
		t.Error("open listener reported closed")
	}
	// Still accepts after the probe (the deadline was cleared).
	go func() {
		if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
			c.Close()
		}
	}()
	c, err := ln.Accept()
	if err != nil {
		t.Fatalf("accept after probe: %v", err)
	}
	c.Close()
	ln.Close()
	if !closed(ln, handle) {
		t.Error("closed listener reported open")
	}
}

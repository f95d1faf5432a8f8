package listener

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// listenUnix binds a Unix stream socket at s.Address so that the file never
// exists with the wrong permissions and a live socket is never stolen:
//
//  1. a socket file already at the path is probed; if something accepts on
//     it, fail with ErrInUse; if nothing does, it is stale and may go;
//  2. bind under a temporary name in the same directory, chmod it, then
//     rename it over the path, so the path appears atomically with its
//     final mode (a chmod after bind would leave a window).
func listenUnix(ctx context.Context, s Spec) (net.Listener, error) {
	path := s.Address
	if err := checkExisting(path); err != nil {
		return nil, err
	}
	tmp, err := tempName(path)
	if err != nil {
		return nil, err
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "unix", tmp)
	if err != nil {
		return nil, fmt.Errorf("listen unix %s: %w", path, err)
	}
	ul := ln.(*net.UnixListener)
	// The file will live under its final name; removal is ours (see Close).
	ul.SetUnlinkOnClose(false)
	fail := func(err error) (net.Listener, error) {
		_ = ul.Close()
		_ = os.Remove(tmp)
		return nil, err
	}
	if s.Mode != 0 {
		if err := os.Chmod(tmp, fs.FileMode(s.Mode)); err != nil {
			return fail(fmt.Errorf("listen unix %s: chmod: %w", path, err))
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(fmt.Errorf("listen unix %s: %w", path, err))
	}
	fi, err := os.Stat(path)
	if err != nil {
		return fail(fmt.Errorf("listen unix %s: %w", path, err))
	}
	return &unixListener{UnixListener: ul, path: path, file: fi}, nil
}

// checkExisting refuses a path that holds a live socket or a non-socket
// file, and removes a stale socket file.
func checkExisting(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("listen unix %s: %w", path, err)
	}
	if fi.Mode()&fs.ModeSocket == 0 {
		return fmt.Errorf("listen unix %s: the path exists and is not a socket", path)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		_ = c.Close()
		return fmt.Errorf("listen unix %s: %w: another process accepts on this socket", path, ErrInUse)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) && !errors.Is(err, syscall.ENOENT) {
		// EAGAIN (a full backlog) or a timeout mean someone is there.
		return fmt.Errorf("listen unix %s: %w: probing the existing socket: %v", path, ErrInUse, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("listen unix %s: removing stale socket: %w", path, err)
	}
	return nil
}

func tempName(path string) (string, error) {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("listen unix %s: %w", path, err)
	}
	name := fmt.Sprintf(".%s.%s.tmp", filepath.Base(path), hex.EncodeToString(b[:]))
	tmp := filepath.Join(filepath.Dir(path), name)
	if len(tmp) > 107 {
		// The temporary name must fit sun_path too; fall back to a short one.
		tmp = filepath.Join(filepath.Dir(path), "."+hex.EncodeToString(b[:]))
	}
	return tmp, nil
}

// unixListener removes its socket file on Close, but only while the file
// is still the one it created: after a reload moved the path to a new
// socket, or another instance replaced it, the file is not ours to remove.
type unixListener struct {
	*net.UnixListener
	path string
	file fs.FileInfo
	once sync.Once
}

// Addr is the socket's path, not the temporary name it was bound under.
func (l *unixListener) Addr() net.Addr { return &net.UnixAddr{Name: l.path, Net: "unix"} }

func (l *unixListener) Close() error {
	err := l.UnixListener.Close()
	l.once.Do(func() {
		if keepFiles.Load() {
			return // handed over: the new process serves this file
		}
		if fi, serr := os.Lstat(l.path); serr == nil && os.SameFile(fi, l.file) {
			_ = os.Remove(l.path)
		}
	})
	return err
}

// Chmod changes the socket file's permission bits in place, so that a
// reload that only changes socket.mode keeps the socket.
func (l *unixListener) Chmod(mode fs.FileMode) error { return os.Chmod(l.path, mode) }

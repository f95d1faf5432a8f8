//go:build !linux

package listener

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"time"
)

// listenUnix binds a Unix stream socket plainly. sluice serves on Linux,
// where unix_linux.go binds through a private directory and never follows
// or removes a file it did not bind; those system calls (O_PATH,
// renameat2) are Linux's, and this version only keeps the package
// building elsewhere for development. It still refuses to take over a
// live socket or anything that is not a socket.
func listenUnix(ctx context.Context, s Spec) (net.Listener, error) {
	if fi, err := os.Lstat(s.Address); err == nil {
		if fi.Mode()&fs.ModeSocket == 0 {
			return nil, fmt.Errorf("listen unix %s: %w: the path is not a socket", s.Address, ErrInUse)
		}
		if c, err := net.DialTimeout("unix", s.Address, time.Second); err == nil {
			_ = c.Close()
			return nil, fmt.Errorf("listen unix %s: %w", s.Address, ErrInUse)
		}
		if err := os.Remove(s.Address); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("listen unix %s: removing stale socket: %w", s.Address, err)
		}
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "unix", s.Address)
	if err != nil {
		return nil, err
	}
	l := &unixListener{UnixListener: ln.(*net.UnixListener), path: s.Address}
	l.SetUnlinkOnClose(false)
	if err := l.Chmod(fs.FileMode(s.Mode)); err != nil {
		_ = l.Close()
		return nil, err
	}
	return l, nil
}

type unixListener struct {
	*net.UnixListener
	path string
}

func (l *unixListener) Addr() net.Addr { return &net.UnixAddr{Name: l.path, Net: "unix"} }

func (l *unixListener) Close() error {
	err := l.UnixListener.Close()
	if !keepFiles.Load() {
		_ = os.Remove(l.path)
	}
	return err
}

// Chmod sets the socket file's permission bits (0: the default).
func (l *unixListener) Chmod(mode fs.FileMode) error {
	if mode == 0 {
		mode = fs.FileMode(DefaultUnixMode())
	}
	return os.Chmod(l.path, mode.Perm())
}

func adoptUnix(s Spec, ul *net.UnixListener) (net.Listener, error) {
	ul.SetUnlinkOnClose(false)
	return &unixListener{UnixListener: ul, path: s.Address}, nil
}

package listener

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// listenUnix binds a Unix stream socket at s.Address so that the file never
// exists with the wrong permissions, a live socket is never stolen, and
// sluice never changes or removes a file it did not bind itself, whatever
// another user with write access to the socket's directory does meanwhile:
//
//  1. the directory is opened once, and every later operation on the
//     socket's name is relative to that descriptor and never follows a
//     symlink (see dirRef);
//  2. a socket file already at the path is probed; if something accepts on
//     it, fail with ErrInUse; if nothing does, it is stale and is removed,
//     if it is still the file probed;
//  3. the socket is bound inside a private directory (mode 0700, ours,
//     held by descriptor), chmodded there, where nobody else can swap
//     the file, then renamed onto the path without replacing anything
//     that appeared there meanwhile; so the path appears atomically with
//     its final mode.
func listenUnix(ctx context.Context, s Spec) (net.Listener, error) {
	path := s.Address
	d, err := openDir(path)
	if err != nil {
		return nil, fmt.Errorf("listen unix %s: %w", path, err)
	}
	ln, id, err := bindUnix(ctx, d, s)
	if err != nil {
		d.close()
		return nil, fmt.Errorf("listen unix %s: %w", path, err)
	}
	return &unixListener{UnixListener: ln, path: path, dir: d, id: id, addr: &net.UnixAddr{Name: path, Net: "unix"}}, nil
}

func bindUnix(ctx context.Context, d *dirRef, s Spec) (*net.UnixListener, fileID, error) {
	if err := checkExisting(d, s.Address); err != nil {
		return nil, fileID{}, err
	}
	priv, err := d.mkPrivate()
	if err != nil {
		return nil, fileID{}, err
	}
	defer priv.remove()
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "unix", priv.bindPath())
	if err != nil {
		return nil, fileID{}, err
	}
	ul := ln.(*net.UnixListener)
	// The file will live under its final name; removal is ours (see Close).
	ul.SetUnlinkOnClose(false)
	fail := func(err error) (*net.UnixListener, fileID, error) {
		_ = ul.Close()
		return nil, fileID{}, err
	}
	if s.Mode != 0 {
		// In the private directory the name can only be our socket.
		if err := unix.Fchmodat(priv.fd, privSock, s.Mode&0o7777, 0); err != nil {
			return fail(fmt.Errorf("chmod: %w", err))
		}
	}
	id, err := statAt(priv.fd, privSock)
	if err != nil {
		return fail(err)
	}
	if err := renameNoReplace(priv.fd, privSock, d.fd, d.base); err != nil {
		if errors.Is(err, unix.EEXIST) {
			err = fmt.Errorf("%w: a file appeared at the path while binding", ErrInUse)
		}
		return fail(err)
	}
	return ul, id, nil
}

// checkExisting refuses a path that holds a live socket or a non-socket
// file (a symlink included), and removes a stale socket file.
func checkExisting(d *dirRef, path string) error {
	id, err := statAt(d.fd, d.base)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return err
	}
	if id.mode&unix.S_IFMT != unix.S_IFSOCK {
		return errors.New("the path exists and is not a socket")
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		_ = c.Close()
		return fmt.Errorf("%w: another process accepts on this socket", ErrInUse)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) && !errors.Is(err, syscall.ENOENT) {
		// EAGAIN (a full backlog) or a timeout mean someone is there.
		return fmt.Errorf("%w: probing the existing socket: %v", ErrInUse, err)
	}
	if err := d.unlinkIf(id); err != nil {
		return fmt.Errorf("removing stale socket: %w", err)
	}
	return nil
}

// unixListener removes its socket file on Close, but only while the file
// is still the one it bound: after a reload moved the path to a new
// socket, or another instance or user replaced it, the file is not ours
// to remove.
type unixListener struct {
	*net.UnixListener
	path string
	addr *net.UnixAddr
	dir  *dirRef
	id   fileID // the socket file as bound
	once sync.Once
}

// Addr is the socket's path, not the name it was bound under.
func (l *unixListener) Addr() net.Addr { return l.addr }

func (l *unixListener) Close() error {
	err := l.UnixListener.Close()
	l.once.Do(func() {
		if !keepFiles.Load() { // handed over: the new process serves this file
			_ = l.dir.unlinkIf(l.id)
		}
		l.dir.close()
	})
	return err
}

// Chmod changes the socket file's permission bits in place, so that a
// reload that only changes socket.mode keeps the socket. Only the file
// this listener bound is changed: a symlink or any other file swapped in
// at the path is refused, never followed.
func (l *unixListener) Chmod(mode fs.FileMode) error {
	fd, err := unix.Openat(l.dir.fd, l.dir.base, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("chmod %s: %w", l.path, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("chmod %s: %w", l.path, err)
	}
	if !l.id.same(&st) {
		return fmt.Errorf("chmod %s: %w", l.path, ErrReplaced)
	}
	// An O_PATH descriptor cannot be fchmodded; its /proc link names the
	// very inode it holds, so this chmod cannot be redirected.
	if err := unix.Chmod(fmt.Sprintf("/proc/self/fd/%d", fd), uint32(mode.Perm())); err != nil {
		return fmt.Errorf("chmod %s: %w", l.path, err)
	}
	return nil
}

// adoptUnix makes a handed-over Unix socket ours as if we had bound it:
// this process removes the file when it closes the listener for good.
func adoptUnix(s Spec, ul *net.UnixListener) (net.Listener, error) {
	ul.SetUnlinkOnClose(false)
	fail := func() (net.Listener, error) {
		_ = ul.Close()
		return nil, fmt.Errorf("listen unix %s: the handed-over socket's file is gone or replaced", s.Address)
	}
	d, err := openDir(s.Address)
	if err != nil {
		return fail()
	}
	id, err := statAt(d.fd, d.base)
	if err != nil || id.mode&unix.S_IFMT != unix.S_IFSOCK {
		d.close()
		return fail()
	}
	return &unixListener{UnixListener: ul, path: s.Address, dir: d, id: id, addr: &net.UnixAddr{Name: s.Address, Net: "unix"}}, nil
}

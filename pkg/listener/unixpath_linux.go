package listener

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Path operations on a Unix socket's name. The socket's directory may be
// writable by others (a shared runtime directory, /tmp), who can swap
// any name in it for a symlink or another file at any moment. So the
// directory is held by descriptor, names are resolved relative to it
// without following symlinks, and a file is changed or removed only when
// its device and inode are the ones sluice recorded.

// dirRef is a socket's directory, held open, and the socket's name in it.
type dirRef struct {
	fd   int
	dir  string
	base string
}

func openDir(path string) (*dirRef, error) {
	dir, base := filepath.Split(path)
	if base == "" || base == "." || base == ".." {
		return nil, errors.New("the path does not name a file")
	}
	if dir == "" {
		dir = "."
	}
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	return &dirRef{fd: fd, dir: dir, base: base}, nil
}

func (d *dirRef) close() { _ = unix.Close(d.fd) }

// unlinkIf removes the socket's name if it still is the file id. The
// check and the unlink are two calls; a swap between them can only make
// sluice remove a name in a directory the swapper can write anyway, never
// touch the file a link points to.
func (d *dirRef) unlinkIf(id fileID) error {
	cur, err := statAt(d.fd, d.base)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return err
	}
	if cur != id {
		return ErrReplaced
	}
	if err := unix.Unlinkat(d.fd, d.base, 0); err != nil && !errors.Is(err, unix.ENOENT) {
		return err
	}
	return nil
}

// fileID identifies a file by device and inode; mode is its type and
// permission bits when it was looked at.
type fileID struct {
	dev, ino uint64
	mode     uint32
}

func (id fileID) same(st *unix.Stat_t) bool {
	return id.dev == st.Dev && id.ino == st.Ino && st.Mode&unix.S_IFMT == unix.S_IFSOCK
}

// statAt looks at name in dirfd without following a symlink.
func statAt(dirfd int, name string) (fileID, error) {
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fileID{}, err
	}
	return fileID{dev: st.Dev, ino: st.Ino, mode: st.Mode &^ 0o7777}, nil
}

// privSock is the socket's name inside its private directory.
const privSock = "s"

// privateDir is a directory of sluice's own (0700, created by this call,
// held by descriptor) next to the socket, where the socket is bound and
// chmodded before it is renamed onto its path. The directory's name in
// the shared directory may be swapped by others; its descriptor may not.
type privateDir struct {
	parent *dirRef
	name   string
	fd     int
}

func (d *dirRef) mkPrivate() (*privateDir, error) {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	name := fmt.Sprintf(".%s.%s.tmp", d.base, hex.EncodeToString(b[:]))
	if len(name) > 64 {
		name = "." + hex.EncodeToString(b[:]) + ".tmp"
	}
	if err := unix.Mkdirat(d.fd, name, 0o700); err != nil {
		return nil, fmt.Errorf("making a private directory to bind in: %w", err)
	}
	fd, err := unix.Openat(d.fd, name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err == nil {
		// Whoever swapped the name between mkdir and open cannot have
		// made a directory owned by us with no access for others.
		var st unix.Stat_t
		if err = unix.Fstat(fd, &st); err == nil && (st.Uid != uint32(os.Geteuid()) || st.Mode&0o077 != 0) {
			_ = unix.Close(fd)
			err = errors.New("the private directory was replaced")
		}
	}
	if err != nil {
		_ = unix.Unlinkat(d.fd, name, unix.AT_REMOVEDIR)
		return nil, fmt.Errorf("opening the private directory to bind in: %w", err)
	}
	return &privateDir{parent: d, name: name, fd: fd}, nil
}

// bindPath names the socket inside the private directory through the
// directory's descriptor, so that bind cannot be redirected elsewhere
// by a swap of the directory's name. It is short, whatever the socket's
// own path, so it always fits sun_path. Without /proc it is the
// directory's path: a swap of its name then makes the bind land
// elsewhere, and the chmod and rename, which go through the descriptor,
// fail instead of touching what the swap pointed to.
func (p *privateDir) bindPath() string {
	if _, err := os.Stat("/proc/self/fd"); err == nil {
		return fmt.Sprintf("/proc/self/fd/%d/%s", p.fd, privSock)
	}
	return filepath.Join(p.parent.dir, p.name, privSock)
}

// remove empties and removes the private directory: what is left in it
// is a socket that was not renamed (a failed bind).
func (p *privateDir) remove() {
	_ = unix.Unlinkat(p.fd, privSock, 0)
	_ = unix.Close(p.fd)
	_ = unix.Unlinkat(p.parent.fd, p.name, unix.AT_REMOVEDIR)
}

// renameNoReplace renames without replacing a file that exists at the
// destination (EEXIST then), so that a socket another process bound
// after the stale check is never stolen. A filesystem without
// RENAME_NOREPLACE gets a plain rename.
func renameNoReplace(olddirfd int, oldname string, newdirfd int, newname string) error {
	err := unix.Renameat2(olddirfd, oldname, newdirfd, newname, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		err = unix.Renameat(olddirfd, oldname, newdirfd, newname)
	}
	return err
}

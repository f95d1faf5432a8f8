//go:build unix

package listener

import "syscall"

// umask is the process's file creation mask, read once at start: Go can
// only read it by setting it, which must not race with files being
// created, and init runs before any goroutine of sluice's does.
var umask = func() uint32 {
	m := syscall.Umask(0)
	syscall.Umask(m)
	return uint32(m)
}()

// DefaultUnixMode is a Unix socket file's mode when socket.mode is not
// set: 0666 minus the umask, as for any file a program creates. bind(2)
// itself would give 0777 minus the umask; the execute bits mean nothing
// on a socket, and a socket shown as 0755 looks like a mistake.
func DefaultUnixMode() uint32 { return 0o666 &^ umask }

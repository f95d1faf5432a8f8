package relay

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// unread reports whether bytes wait in the receive queue of the socket
// fd, not yet read: the peer was not idle, sluice just has not got to
// them yet.
func unread(fd int) bool {
	n, err := unix.IoctlGetInt(fd, unix.SIOCINQ)
	return err == nil && n > 0
}

// connUnread is unread for a connection that is the socket itself; false
// for a wrapper, whose bytes only its own Read can tell, and for a closed
// socket.
func connUnread(c net.Conn) bool {
	if c == nil || !isSocket(c) {
		return false
	}
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		return false
	}
	waiting := false
	// Control holds the descriptor open for the call: a concurrent Close
	// cannot hand its number to another file meanwhile.
	if err := rc.Control(func(fd uintptr) { waiting = unread(int(fd)) }); err != nil {
		return false
	}
	return waiting
}

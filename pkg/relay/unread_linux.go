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

// connUnread is unread for the socket of c: c itself, or the socket a
// TLS connection or a replaying wrapper holds; false for a closed socket
// and a wrapper that does not say what it wraps.
func connUnread(c net.Conn) bool {
	c = socketOf(c)
	if c == nil {
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

// socketOf returns the socket under c, following wrappers that say what
// they wrap (crypto/tls's NetConn, peek.Replay's Unwrap); nil when it
// cannot tell.
func socketOf(c net.Conn) net.Conn {
	for range 8 {
		if c == nil || isSocket(c) {
			return c
		}
		switch w := c.(type) {
		case interface{ NetConn() net.Conn }:
			c = w.NetConn()
		case interface{ Unwrap() net.Conn }:
			c = w.Unwrap()
		default:
			return nil
		}
	}
	return nil
}

// connWritable reports whether the socket c has room for a write now.
func connWritable(c net.Conn) bool {
	if !isSocket(c) {
		return false
	}
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		return false
	}
	room := false
	if err := rc.Control(func(fd uintptr) {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
		n, err := unix.Poll(fds, 0)
		room = err == nil && n == 1 && fds[0].Revents&unix.POLLOUT != 0
	}); err != nil {
		return false
	}
	return room
}

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
func connUnread(c net.Conn) (waiting bool) {
	withFD(socketOf(c), func(fd int) { waiting = unread(fd) })
	return waiting
}

// connWritable reports whether the socket c has room for a write now.
func connWritable(c net.Conn) (room bool) {
	withFD(c, func(fd int) {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
		n, err := unix.Poll(fds, 0)
		room = err == nil && n == 1 && fds[0].Revents&unix.POLLOUT != 0
	})
	return room
}

// withFD runs f with the descriptor of c when c is an open socket. The
// descriptor is held open for the call: a concurrent Close cannot hand
// its number to another file meanwhile.
func withFD(c net.Conn, f func(fd int)) {
	if c == nil || !isSocket(c) {
		return
	}
	if rc, err := c.(syscall.Conn).SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) { f(int(fd)) })
	}
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

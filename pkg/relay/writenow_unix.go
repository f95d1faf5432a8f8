//go:build unix

package relay

import (
	"net"
	"os"
	"syscall"
)

// WriteNow writes what the socket conn takes of p without waiting for
// room: n is what went, and 0 with a nil error when its buffer is full,
// or when conn is not the socket itself (a wrapper, which only its own
// Write may write). A handler writes what must go first on a connection
// just made this way, with no deadline to arm and clear: a fresh
// socket's buffer takes it, and only what is left needs a wait.
func WriteNow(conn net.Conn, p []byte) (n int, err error) {
	if !isSocket(conn) {
		return 0, nil
	}
	rc, err := conn.(syscall.Conn).SyscallConn()
	if err != nil {
		return 0, err
	}
	var werr error
	if err := rc.Write(func(fd uintptr) bool {
		for {
			n, werr = syscall.Write(int(fd), p)
			if werr != syscall.EINTR {
				return true // whatever the outcome: never wait
			}
		}
	}); err != nil {
		return 0, err
	}
	switch {
	case werr == syscall.EAGAIN:
		return 0, nil
	case werr != nil:
		return 0, os.NewSyscallError("write", werr)
	}
	return n, nil
}

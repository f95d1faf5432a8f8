//go:build unix

package relay

import (
	"net"
	"os"
	"syscall"
)

// writeNow writes what the socket conn takes of p without waiting for
// room: n is what went, and 0 with a nil error when its buffer is full.
func writeNow(conn net.Conn, p []byte) (n int, err error) {
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

//go:build unix

package relay

import (
	"io"
	"net"
	"os"
	"syscall"
)

// ReadWaiting reads into p what conn's socket holds already, without
// waiting for more: n is 0 when nothing is there yet, and err io.EOF when
// the peer has closed its side. ok is false when conn is not the socket
// itself (a middleware's wrapper), which only its own Read may read.
//
// A handler uses it to send bytes that are already there along with
// something it must write first, in one write instead of two (the proxy's
// PROXY protocol header); what it reads is its to count and to pass on.
func ReadWaiting(conn net.Conn, p []byte) (n int, ok bool, err error) {
	if !isSocket(conn) {
		return 0, false, nil
	}
	rc, err := conn.(syscall.Conn).SyscallConn()
	if err != nil {
		return 0, false, nil
	}
	var rerr error
	werr := rc.Read(func(fd uintptr) bool {
		for {
			n, rerr = syscall.Read(int(fd), p)
			if rerr != syscall.EINTR {
				return true // done, whatever the outcome: never wait
			}
		}
	})
	switch {
	case werr != nil:
		return 0, true, werr
	case rerr == syscall.EAGAIN:
		return 0, true, nil
	case rerr != nil:
		return 0, true, os.NewSyscallError("read", rerr)
	case n == 0 && len(p) > 0:
		return 0, true, io.EOF
	}
	return n, true, nil
}

//go:build unix

package peek

import (
	"errors"
	"net"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Socket is Read for a socket, as HAProxy's inspect-delay does it: it
// looks at the waiting bytes with MSG_PEEK, leaving them in the socket for
// the next reader, and waits for new ones through the runtime's poller
// (never a spinning loop) until look is done, buf is full, the deadline
// passes (os.ErrDeadlineExceeded) or the peer closes (io.EOF). ok is
// false when conn is not a socket: Read is the way then.
func Socket(conn net.Conn, buf []byte, deadline time.Time, look Look) (seen []byte, ok bool, err error) {
	sc, isSock := conn.(syscall.Conn)
	if !isSock {
		return nil, false, nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil, false, nil
	}
	if err := conn.SetReadDeadline(deadline); err != nil {
		return nil, true, err
	}
	defer func() { _ = conn.SetReadDeadline(time.Time{}) }()
	have := 0
	for {
		var n int
		var perr error
		closed := false
		err := rc.Read(func(fd uintptr) bool {
			n, _, perr = unix.Recvfrom(int(fd), buf, unix.MSG_PEEK)
			switch {
			case errors.Is(perr, unix.EAGAIN), errors.Is(perr, unix.EINTR):
				return false
			case perr == nil && n > 0 && n == have && n < len(buf):
				// Nothing new since the last look. A peek shows the
				// bytes, not the peer's FIN behind them: ask for it, or
				// a client that half-closed would wait for the deadline.
				closed = peerClosed(int(fd))
				return closed
			}
			return true
		})
		if err == nil {
			err = perr
		}
		if err == nil && (n == 0 || closed) {
			err = errEOF
		}
		if err != nil {
			return buf[:have], true, err
		}
		have = n
		done, want := look(buf[:n])
		switch {
		case done:
			return buf[:n], true, nil
		case want > len(buf):
			buf = append(buf[:n], make([]byte, want-n)...)
		case n == len(buf):
			return buf[:n], true, nil
		}
	}
}

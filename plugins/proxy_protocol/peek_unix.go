//go:build unix

package proxyprotocol

import (
	"errors"
	"io"
	"net"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sluice-dev/sluice/pkg/chain"
)

// peekHeader is readHeader for a socket, as HAProxy does it: it looks at
// the waiting bytes with MSG_PEEK and takes only the header out of the
// socket, so that the bytes after it (or all of them, without a header)
// stay there for the next handler, and the connection stays the bare
// socket the relay can splice and poll. ok is false when conn is not a
// socket; readHeader is the way then.
func peekHeader(conn net.Conn, deadline time.Time) (res readResult, ok bool) {
	sc, isSock := conn.(syscall.Conn)
	if !isSock {
		return readResult{}, false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return readResult{}, false
	}
	if err := conn.SetReadDeadline(deadline); err != nil {
		return readResult{outcome: quiet, err: err}, true
	}
	defer func() { _ = conn.SetReadDeadline(time.Time{}) }()
	buf := make([]byte, firstBuf)
	seen := 0
	for {
		var n int
		var perr error
		err := rc.Read(func(fd uintptr) bool {
			n, _, perr = unix.Recvfrom(int(fd), buf, unix.MSG_PEEK)
			switch {
			case errors.Is(perr, unix.EAGAIN), errors.Is(perr, unix.EINTR):
				return false
			case perr == nil && n > 0 && n == seen && n < len(buf):
				// Nothing new since the last look: wait for more.
				return false
			}
			return true
		})
		if err == nil {
			err = perr
		}
		if err == nil && n == 0 {
			err = io.EOF
		}
		if err != nil {
			out := incomplete
			if seen == 0 {
				out = quiet
			}
			return readResult{outcome: out, start: buf[:seen], err: err, expired: chain.IsTimeout(err)}, true
		}
		seen = n
		hl, done := frame(buf[:n])
		switch {
		case done && hl == 0:
			return readResult{outcome: noHeader, start: buf[:n]}, true
		case done && hl < 0:
			return readResult{outcome: bad, start: buf[:n], err: errors.New("v1 header longer than 107 bytes")}, true
		case done:
			// The header is there in full: take exactly it.
			if _, err := io.ReadFull(conn, buf[:hl]); err != nil {
				return readResult{outcome: bad, start: buf[:n], err: err}, true
			}
			return parse(buf[:hl], hl), true
		case hl > len(buf):
			buf = append(buf[:n], make([]byte, hl-n)...)
		}
	}
}

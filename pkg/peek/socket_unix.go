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
	p := &peeker{buf: buf}
	// The first looks never wait: when the bytes that decide are there
	// already (a client's first segment often is), no deadline timer is
	// armed at all.
	defer func() {
		if p.wait {
			_ = conn.SetReadDeadline(time.Time{})
		}
	}()
	for {
		err := rc.Read(p.try)
		if p.idle && !p.wait {
			if err := conn.SetReadDeadline(deadline); err != nil {
				return nil, true, err
			}
			p.wait = true
			continue
		}
		if err == nil {
			err = p.err
		}
		if err == nil && (p.n == 0 || p.closed) {
			err = errEOF
		}
		if err != nil {
			return p.buf[:p.have], true, err
		}
		p.have = p.n
		done, want := look(p.buf[:p.n])
		switch {
		case done:
			return p.buf[:p.n], true, nil
		case want > len(p.buf):
			p.buf = append(p.buf[:p.n], make([]byte, want-p.n)...)
		case p.n == len(p.buf):
			return p.buf[:p.n], true, nil
		}
	}
}

// peeker is one Socket call's state; its try is what the runtime calls
// each time the socket may be readable.
type peeker struct {
	buf    []byte
	have   int // bytes seen by the last look
	n      int // bytes seen by this one
	err    error
	closed bool // the peer's FIN is behind the bytes seen
	wait   bool // park until the socket is readable when nothing is new
	idle   bool // nothing new since the last look
}

func (p *peeker) try(fd uintptr) bool {
	p.n, _, p.err = unix.Recvfrom(int(fd), p.buf, unix.MSG_PEEK)
	p.idle = false
	switch {
	case errors.Is(p.err, unix.EAGAIN), errors.Is(p.err, unix.EINTR):
		p.idle, p.err = true, nil
	case p.err == nil && p.n > 0 && p.n == p.have && p.n < len(p.buf):
		// Nothing new since the last look. A peek shows the bytes, not
		// the peer's FIN behind them: ask for it, or a client that
		// half-closed would wait for the deadline.
		p.closed = peerClosed(int(fd))
		p.idle = !p.closed
	}
	return !p.idle || !p.wait
}

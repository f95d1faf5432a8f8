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
	p := &peeker{buf: buf, dl: lateDeadline{conn: conn, deadline: deadline}}
	p.peekNow = p.peek
	defer p.dl.clear()
	for {
		err := rc.Read(p.try)
		if err == nil {
			err = p.err
		}
		if err == nil && (p.n == 0 || p.closed) {
			err = errEOF
		}
		if err != nil {
			// The wait ended: bytes that came since the last look, held
			// back by the pacer, get their look now.
			if p.counted > p.last {
				// Counted, not copied yet: one last peek, which
				// never waits (Control is past the deadline's reach).
				_ = rc.Control(p.peekNow)
			}
			if p.last > p.pace.looked {
				if done, _ := p.pace.look(look, p.buf[:p.last]); done {
					return p.buf[:p.last], true, nil
				}
			}
			return p.buf[:p.pace.looked], true, err
		}
		done, want := p.pace.look(look, p.buf[:p.n])
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
	buf     []byte
	pace    pacer
	n       int // bytes seen by this peek
	last    int // bytes seen by the last peek that saw any: in buf
	counted int // bytes known to wait in the socket: last, or more
	peekNow func(fd uintptr)
	err     error
	closed  bool // the peer's FIN is behind the bytes seen
	idle    bool // nothing new to look at
	dl      lateDeadline
}

func (p *peeker) try(fd uintptr) bool {
	p.idle = false
	if p.pace.looks >= maxLooks {
		// Paced: count the waiting bytes before copying them all
		// again, and copy them only when they are due for a look.
		if q, ok := queued(int(fd)); ok && q > p.last && q < len(p.buf) && !p.pace.due(q, len(p.buf)) {
			if q != p.counted || !peerClosed(int(fd)) {
				p.counted, p.idle = q, true
				return p.settle()
			}
			// Nothing new, and the peer closed: the bytes are final.
			p.closed = true
		}
	}
	p.n, p.err = recv(int(fd), p.buf, unix.MSG_PEEK)
	switch {
	case errors.Is(p.err, unix.EAGAIN), errors.Is(p.err, unix.EINTR):
		p.idle, p.err = true, nil
	case p.closed:
	case p.err == nil && p.n > 0 && p.n == p.last && p.n < len(p.buf):
		// Nothing new since the last peek. A peek shows the bytes, not
		// the peer's FIN behind them: ask for it, or a client that
		// half-closed would wait for the deadline.
		p.closed = peerClosed(int(fd))
		p.idle = !p.closed
	case p.err == nil && p.n > 0 && !p.pace.due(p.n, len(p.buf)):
		// New bytes, too few yet to be worth a look (maxLooks).
		p.idle = true
	}
	if p.err == nil && p.n > 0 {
		p.last, p.counted = p.n, p.n
	}
	return p.settle()
}

// settle tells the runtime whether try is done: yes with something new to
// look at (or an error); no, to park until the socket is readable, with
// nothing new, the deadline armed (lateDeadline).
func (p *peeker) settle() bool {
	if !p.idle {
		return true
	}
	if err := p.dl.arm(); err != nil {
		p.err, p.idle = err, false
		return true
	}
	return false
}

// peek copies what waits in the socket without waiting: the last look's
// bytes when the wait ended.
func (p *peeker) peek(fd uintptr) {
	if n, err := recv(int(fd), p.buf, unix.MSG_PEEK|unix.MSG_DONTWAIT); err == nil && n > p.last {
		p.last, p.counted = n, n
	}
}

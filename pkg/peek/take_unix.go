//go:build unix

package peek

import (
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// readSocket is Read on a socket: each receive takes the bytes out of the
// socket, one receive per wait where a peek and then the next handler's
// read would make two, and the bytes after those that decide come out
// with them for the Replay. Its waits arm their deadline late
// (lateDeadline): a connection whose first bytes
// are there at once arms no timer, and one whose bytes come later makes
// one empty receive per wait. ok is false when conn is not
// the socket itself: a wrapper that reaches its socket's descriptor must
// still see every byte through its own Read.
func readSocket(conn net.Conn, buf []byte, deadline time.Time, look Look) (got []byte, ok bool, err error) {
	var sc syscall.Conn
	switch c := conn.(type) {
	case *net.TCPConn:
		sc = c
	case *net.UnixConn:
		sc = c
	default:
		return nil, false, nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil, false, nil
	}
	t := takers.Get().(*taker)
	t.buf, t.dl = buf, lateDeadline{conn: conn, deadline: deadline}
	defer t.done()
	for {
		if t.n == len(t.buf) {
			return t.buf[:t.n], true, nil
		}
		err := rc.Read(t.tryFn)
		if err == nil {
			err = t.err
		}
		if t.n > t.pace.looked && (err != nil || t.pace.due(t.n, len(t.buf))) {
			done, want := t.pace.look(look, t.buf[:t.n])
			if done {
				return t.buf[:t.n], true, nil
			}
			if want > len(t.buf) {
				t.buf = append(t.buf[:t.n], make([]byte, want-t.n)...)
			}
		}
		if err != nil {
			return t.buf[:t.n], true, err
		}
	}
}

// taker is one readSocket call's state; its try is what the runtime calls
// each time the socket may be readable. Takers are pooled, each with its
// try made into a func value once, so that a read costs no allocation of
// its own.
type taker struct {
	buf   []byte
	n     int // bytes taken, in buf
	pace  pacer
	err   error
	dl    lateDeadline
	tryFn func(fd uintptr) bool
}

var takers = sync.Pool{New: func() any {
	t := new(taker)
	t.tryFn = t.try
	return t
}}

// done lifts the deadline, if armed, and gives t back, holding nothing.
func (t *taker) done() {
	t.dl.clear()
	fn := t.tryFn
	*t = taker{tryFn: fn}
	takers.Put(t)
}

func (t *taker) try(fd uintptr) bool {
	m, err := recv(int(fd), t.buf[t.n:])
	switch {
	case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EINTR):
		if err := t.dl.arm(); err != nil {
			t.err = err
			return true
		}
		return false
	case err != nil:
		t.err = err
	case m == 0:
		t.err = io.EOF
	default:
		t.n += m
	}
	return true
}

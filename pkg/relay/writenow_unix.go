//go:build unix

package relay

import (
	"net"
	"os"
	"sync"
	"syscall"
)

// WriteNow writes what the socket conn takes of p without waiting for
// room: n is what went, and 0 with a nil error when its buffer is full,
// or when conn is not the socket itself (a wrapper, which only its own
// Write may write). A handler writes what must go first on a connection
// just made this way, with no deadline to arm and clear: a fresh
// socket's buffer takes it, and only what is left needs a wait.
func WriteNow(conn net.Conn, p []byte) (n int, err error) {
	if !isSocket(conn) || len(p) == 0 {
		return 0, nil
	}
	rc, err := conn.(syscall.Conn).SyscallConn()
	if err != nil {
		return 0, err
	}
	w := nowWriters.Get().(*nowWriter)
	w.p = p
	err = rc.Write(w.fn)
	n, werr := w.n, w.err
	*w = nowWriter{fn: w.fn}
	nowWriters.Put(w)
	switch {
	case err != nil:
		return 0, err
	case werr == syscall.EAGAIN:
		return 0, nil
	case werr != nil:
		return 0, os.NewSyscallError("write", werr)
	}
	return n, nil
}

// nowWriter is one WriteNow call's state, pooled with its write made into
// a func value once: the call costs no allocation of its own.
type nowWriter struct {
	p   []byte
	n   int
	err error
	fn  func(fd uintptr) bool
}

var nowWriters = sync.Pool{New: func() any {
	w := new(nowWriter)
	w.fn = w.write
	return w
}}

// write is RawConn.Write's callback: one write, whatever its outcome,
// never a wait.
func (w *nowWriter) write(fd uintptr) bool {
	for {
		w.n, w.err = sockWrite(int(fd), w.p)
		if w.err != syscall.EINTR {
			return true
		}
	}
}

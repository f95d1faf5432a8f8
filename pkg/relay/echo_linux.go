package relay

import (
	"fmt"
	"net"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// An echo reads a message, writes it back and reads again. With Go's
// poller that last read usually finds nothing and ends in EAGAIN before
// the goroutine parks: a system call per message for nothing. A short
// read cannot say that the queue is empty, nor that the peer's FIN came
// with the bytes (then no readiness event follows, and a goroutine that
// parked without reading would wait for good). TCP_INQ can: with it each
// recvmsg reports how many bytes are left in the receive queue, and a
// non-zero count once the FIN is in. So an echo on a TCP socket reads,
// writes back and parks inside one RawConn.Read, without the read that
// would fail: readiness that comes after the count was taken wakes it
// again, because the wait and the reads belong to the same RawConn.Read.

// inqMsg is a recvmsg header for one buffer and a TCP_CM_INQ message,
// kept with its echo so that a read allocates nothing.
type inqMsg struct {
	hdr unix.Msghdr
	iov unix.Iovec
	oob [unix.SizeofCmsghdr + 8]byte
}

// recv reads into p without blocking and returns the bytes read and the
// bytes left in the queue (1 when the FIN is in, or when the kernel did
// not say).
func (m *inqMsg) recv(fd int, p []byte) (n, inq int, err error) {
	m.iov.Base = &p[0]
	m.iov.SetLen(len(p))
	m.hdr.Iov = &m.iov
	m.hdr.SetIovlen(1)
	m.hdr.Control = &m.oob[0]
	m.hdr.SetControllen(len(m.oob))
	r, _, e := unix.RawSyscall(unix.SYS_RECVMSG, uintptr(fd), uintptr(unsafe.Pointer(&m.hdr)), unix.MSG_DONTWAIT)
	// The buffer goes back to its pool while the socket is quiet: the
	// header must not keep it alive.
	m.iov.Base = nil
	if e != 0 {
		return 0, 0, e
	}
	inq = 1
	if m.hdr.Controllen >= unix.SizeofCmsghdr+4 {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&m.oob[0]))
		if h.Level == unix.SOL_TCP && h.Type == unix.TCP_CM_INQ {
			inq = int(*(*int32)(unsafe.Pointer(&m.oob[unix.SizeofCmsghdr])))
		}
	}
	return int(r), inq, nil
}

// echoer runs an echo's reads and writes inside RawConn.Read callbacks.
type echoer struct {
	f   *flow
	r   *idleReader
	msg inqMsg
	fn  func(fd uintptr) bool // e.step, made once
	// What a callback leaves for its caller: bytes read (n) of which w
	// were written back, a read or write error, and whether the reads
	// show bulk data.
	n, w       int
	rerr, werr error
	big        int
	bulk       bool
}

// newEchoer switches TCP_INQ on for the socket of an echo (src and dst
// are one TCP socket); false when that cannot be done.
func newEchoer(f *flow, r *idleReader) (*echoer, bool) {
	if f.src != f.dst || f.p != nil {
		return nil, false
	}
	if _, ok := f.src.(*net.TCPConn); !ok {
		return nil, false
	}
	var err error
	if cerr := r.rc.Control(func(fd uintptr) {
		err = unix.SetsockoptInt(int(fd), unix.SOL_TCP, unix.TCP_INQ, 1)
	}); cerr != nil || err != nil {
		return nil, false
	}
	e := &echoer{f: f, r: r}
	e.fn = e.step
	return e, true
}

// step reads and writes back until the queue is empty, then parks
// (false). It returns true to its caller when a write could not finish,
// the reads show bulk data, or the stream ended or failed.
func (e *echoer) step(fd uintptr) bool {
	r := e.r
	for {
		if r.buf == nil {
			r.buf = GetBuffer()
		}
		n, inq, err := e.msg.recv(int(fd), *r.buf)
		switch err {
		case nil:
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			r.release()
			return false
		default:
			e.rerr = os.NewSyscallError("recvmsg", err)
			return true
		}
		e.n, e.w = n, 0
		if n == 0 {
			return true
		}
		for e.w < n {
			w, err := rawWrite(int(fd), (*r.buf)[e.w:n])
			if err == syscall.EINTR {
				continue
			}
			if err != nil {
				if err != syscall.EAGAIN {
					e.werr = os.NewSyscallError("sendto", err)
				}
				break
			}
			e.w += w
			e.f.count(w)
		}
		if e.w < n || e.werr != nil {
			return true
		}
		if n >= bulkRead {
			e.big++
		} else {
			e.big = 0
		}
		if (n == BufferSize || e.big >= bulkReads) && directSplice.Load() {
			e.bulk = true
			return true
		}
		if err := e.f.dl.refresh(); err != nil {
			e.rerr = err
			return true
		}
		e.n, e.w = 0, 0
		if inq == 0 {
			r.release()
			return false
		}
	}
}

// run echoes until the end of the stream (nil), an error, or until the
// reads show bulk data (true): direct then switches to splice.
func (e *echoer) run() (bulk bool, err error) {
	f, r := e.f, e.r
	for {
		if err := f.wait(); err != nil {
			return false, err
		}
		e.n, e.w, e.rerr, e.werr, e.bulk = 0, 0, nil, nil, false
		werr := r.rc.Read(e.fn)
		if e.werr != nil {
			return false, fmt.Errorf("write: %w", e.werr)
		}
		if e.w < e.n {
			// The socket was full: the rest goes with Go's poller.
			f.st.held()
			if err := f.write((*r.buf)[e.w:e.n]); err != nil {
				return false, err
			}
		}
		if e.bulk {
			return true, nil
		}
		if e.n == 0 && e.rerr == nil && werr == nil {
			return false, nil // EOF
		}
		if err := e.rerr; err != nil {
			return false, f.end(err)
		}
		if werr != nil {
			if f.heldUp(werr, true) {
				continue
			}
			return false, f.end(werr)
		}
	}
}

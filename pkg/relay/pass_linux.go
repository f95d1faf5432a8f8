package relay

import (
	"net"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A copy reads a message, writes it on (back, for an echo) and reads
// again. With Go's poller that last read usually finds nothing and ends
// in EAGAIN before the goroutine parks: a system call per message for
// nothing. A short
// read cannot say that the queue is empty, nor that the peer's FIN came
// with the bytes (then no readiness event follows, and a goroutine that
// parked without reading would wait for good). TCP_INQ can: with it each
// recvmsg reports how many bytes are left in the receive queue, and a
// non-zero count once the FIN is in. So a copy from a TCP socket reads,
// writes on and parks inside one RawConn.Read, without the read that
// would fail: readiness that comes after the count was taken wakes it
// again, because the wait and the reads belong to the same RawConn.Read.

// recvInq reads into p without blocking and returns the bytes read and
// the bytes left in the queue: 1 when the FIN is in, and when the kernel
// did not say (TCP_INQ off), so that the caller reads on until EAGAIN.
func recvInq(fd int, p []byte) (n, inq int, err error) {
	var oob [unix.SizeofCmsghdr + 8]byte
	iov := unix.Iovec{Base: &p[0]}
	iov.SetLen(len(p))
	hdr := unix.Msghdr{Iov: &iov, Control: &oob[0]}
	hdr.SetIovlen(1)
	hdr.SetControllen(len(oob))
	r, _, e := unix.RawSyscall(unix.SYS_RECVMSG, uintptr(fd), uintptr(unsafe.Pointer(&hdr)), unix.MSG_DONTWAIT)
	if e != 0 {
		return 0, 0, e
	}
	inq = 1
	if hdr.Controllen >= unix.SizeofCmsghdr+4 {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		if h.Level == unix.SOL_TCP && h.Type == unix.TCP_CM_INQ {
			inq = int(*(*int32)(unsafe.Pointer(&oob[unix.SizeofCmsghdr])))
		}
	}
	return int(r), inq, nil
}

// passOn makes r, the reader of f, pass on what it reads within its own
// wait (passFill), when f's ends are TCP sockets: the one socket of an
// echo, which writes back, or the two of a relay's direction. A relay's
// pair that may still move to the event loop counts its messages in
// direct instead. False, and r as it was, for any other flow.
func (r *idleReader) passOn(f *flow) bool {
	if f.p != nil && f.p.hop != nil {
		return false
	}
	if _, ok := f.src.(*net.TCPConn); !ok {
		return false
	}
	var out syscall.RawConn
	if f.dst != f.src {
		dst, ok := f.dst.(*net.TCPConn)
		if !ok {
			return false
		}
		rc, err := dst.SyscallConn()
		if err != nil {
			return false
		}
		out = rc
	}
	r.c, r.dir, r.dueAt, r.out, r.pass = f.c, f.dir, f.dl.dueAt(), out, true
	return true
}

// passFill is fill for a flow passOn took: it reads and passes on until
// the queue is empty, then parks (false). It returns true, for read to
// hand over, when a write could not finish (n and w say what is left),
// the reads show bulk data, or the stream ended or failed.
func (r *idleReader) passFill(fd uintptr) bool {
	if !r.inq {
		// Once per socket; should it fail, every count says 1 and the
		// flow reads on until EAGAIN, as without it.
		r.inq = true
		_ = unix.SetsockoptInt(int(fd), unix.SOL_TCP, unix.TCP_INQ, 1)
	}
	for {
		if r.buf == nil {
			r.buf = GetBuffer()
		}
		r.dog.touch() // before the bytes leave the queue: see watchdog
		n, inq, err := recvInq(int(fd), *r.buf)
		switch err {
		case nil:
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			r.release()
			return false
		default:
			r.err = errno(err)
			return true
		}
		r.n, r.w = int32(n), 0
		if n == 0 {
			return true
		}
		if r.out == nil {
			r.writeOut(fd)
		} else if err := r.out.Write(r.writeFn); err != nil {
			return true // closed: the caller's write says so
		}
		if r.w < r.n {
			// Full (EAGAIN) or failed: the caller's write waits for
			// room, or reports the error.
			return true
		}
		if n < bulkRead {
			r.big = 0
		} else if r.big < bulkReads {
			r.big++
		}
		if (n == BufferSize || r.big >= bulkReads) && directSplice.Load() {
			r.bulk = true
			return true
		}
		r.n, r.w = 0, 0
		if sinceEpoch() >= r.dueAt {
			// read hands back nothing, and the caller pushes the
			// deadline on, as before any read, and reports its error.
			r.again = true
			return true
		}
		if inq == 0 {
			r.release()
			return false
		}
	}
}

// writeOut writes the bytes read, w to n, on the destination's
// descriptor, without waiting: what a full socket did not take is left
// for the caller's write. It is RawConn.Write's callback for a relay's
// direction, which holds the destination open while it writes; an echo
// calls it with its own descriptor.
func (r *idleReader) writeOut(fd uintptr) bool {
	for r.w < r.n {
		w, err := rawWrite(int(fd), (*r.buf)[r.w:r.n])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			break
		}
		r.w += int32(w)
		countInto(r.c, r.dir, w)
		r.dog.touch()
	}
	return true
}

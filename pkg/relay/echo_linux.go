package relay

import (
	"net"
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

// echoOn makes r, the reader of f, an echo's: f's src and dst are one
// TCP socket, and fill writes back what it reads. False, and r as it
// was, for any other flow.
func (r *idleReader) echoOn(f *flow) bool {
	if f.src != f.dst || f.p != nil {
		return false
	}
	if _, ok := f.src.(*net.TCPConn); !ok {
		return false
	}
	r.c, r.dir, r.dueAt, r.echo = f.c, f.dir, f.dl.dueAt(), true
	return true
}

// echoFill is fill for an echo: it reads and writes back until the queue
// is empty, then parks (false). It returns true, for read to hand over,
// when a write could not finish (n and w say what is left), the reads
// show bulk data, or the stream ended or failed.
func (r *idleReader) echoFill(fd uintptr) bool {
	if !r.inq {
		// Once per socket; should it fail, every count says 1 and the
		// echo reads on until EAGAIN, as without it.
		r.inq = true
		_ = unix.SetsockoptInt(int(fd), unix.SOL_TCP, unix.TCP_INQ, 1)
	}
	for {
		if r.buf == nil {
			r.buf = GetBuffer()
		}
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
		for int(r.w) < n {
			w, err := rawWrite(int(fd), (*r.buf)[r.w:n])
			if err == syscall.EINTR {
				continue
			}
			if err != nil {
				// Full (EAGAIN) or failed: the caller's write waits
				// for room, or reports the error.
				return true
			}
			r.w += int32(w)
			countInto(r.c, r.dir, w)
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

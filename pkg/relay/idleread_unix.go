//go:build unix

package relay

import (
	"io"
	"net"
	"os"
	"sync"
	"syscall"

	"github.com/sluice-dev/sluice/pkg/chain"
)

// idleReader reads a socket without holding a buffer while the socket is
// idle. A goroutine parked in net.Conn.Read keeps its buffer; with 32 KiB
// per connection, ten thousand quiet connections would pin 320 MiB. An
// idleReader waits for readability through syscall.RawConn first and
// takes a pooled buffer only once data is there, giving it back to the
// pool as soon as a read would block.
//
// It reads the socket directly, so it serves only the sockets themselves,
// never a middleware's wrapper. Deadlines set on the connection apply to
// its waits. It is not safe for concurrent use.
type idleReader struct {
	rc  syscall.RawConn
	buf *[]byte
	// readFn and writeFn are the method values r.fill and r.writeOut,
	// made once so that a read does not allocate a closure.
	readFn, writeFn func(fd uintptr) bool
	// dog is touched before each read (see watchdog); nil for Copy.
	dog *watchdog
	err int32 // a syscall.Errno
	n   int32

	// For a flow that passes on within its wait (see passOn), kept here
	// rather than a pointer to its flow, which then stays on the stack:
	// out is the destination (nil: the socket read, an echo's); c and
	// dir count the bytes passed on; dueAt is when the idle deadline
	// wants pushing on (see sinceEpoch); w is how many of the n bytes
	// read went on; big counts reads in a row of at least bulkRead
	// bytes, bulk says they show bulk data, again that the deadline is
	// due, and inq that TCP_INQ was asked for.
	out                    syscall.RawConn
	c                      *chain.Conn
	dueAt                  int64
	w                      int32
	big                    int8
	dir                    Dir
	pass, bulk, again, inq bool
}

// newIdleReader returns an idleReader for c, or false when c is not a
// socket that exposes its descriptor (a wrapper, a net.Pipe).
func newIdleReader(c net.Conn) (*idleReader, bool) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil, false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil, false
	}
	r := idleReaders.Get().(*idleReader)
	r.rc = rc
	return r, true
}

// idleReaders are pooled: a connection's reader, with its callback, then
// costs no allocation of its own.
var idleReaders = sync.Pool{New: func() any {
	r := new(idleReader)
	r.readFn, r.writeFn = r.fill, r.writeOut
	return r
}}

// close releases r's buffer and gives r back to its pool. r must not be
// used after; the connection itself stays open.
func (r *idleReader) close() {
	r.release()
	r.rc, r.dog, r.n, r.err = nil, nil, 0, 0
	r.out, r.c, r.dueAt, r.w, r.big, r.dir = nil, nil, 0, 0, 0, 0
	r.pass, r.bulk, r.again, r.inq = false, false, false, false
	idleReaders.Put(r)
}

// read waits until the socket is readable, then reads into a pooled
// buffer of BufferSize bytes. The bytes are valid until the next read or
// release. At the end of the stream it returns io.EOF.
//
// A read of a flow that passes on (see passOn) writes what it reads
// until a write cannot finish, and returns what is left to write; errBulk
// when the reads showed bulk data, all of it passed on; nothing (and no
// error) when its idle deadline is due to be pushed on.
func (r *idleReader) read() ([]byte, error) {
	r.n, r.err, r.w, r.bulk, r.again = 0, 0, 0, false, false
	if err := r.rc.Read(r.readFn); err != nil {
		// A deadline or a closed socket: the wait itself failed.
		return nil, err
	}
	if r.err != 0 {
		return nil, os.NewSyscallError("read", syscall.Errno(r.err))
	}
	if r.bulk {
		return nil, errBulk
	}
	if r.again {
		return nil, nil
	}
	if r.n == 0 {
		return nil, io.EOF
	}
	return (*r.buf)[r.w:r.n], nil
}

// buffered reports whether r holds a pooled buffer now.
func (r *idleReader) buffered() bool { return r.buf != nil }

// release gives r's buffer back to the pool, if it holds one.
func (r *idleReader) release() {
	if r.buf != nil {
		PutBuffer(r.buf)
		r.buf = nil
	}
}

// fill is called by RawConn.Read with the socket's descriptor; returning
// false parks the goroutine until the socket is readable.
func (r *idleReader) fill(fd uintptr) bool {
	if r.pass {
		return r.passFill(fd)
	}
	if r.buf == nil {
		r.buf = GetBuffer()
	}
	r.dog.touch()
	for {
		n, err := sockRead(int(fd), *r.buf)
		switch err {
		case nil:
			r.n = int32(n)
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			// Nothing to read: wait without the buffer.
			r.release()
			return false
		default:
			r.err = errno(err)
		}
		return true
	}
}

// errno is the error number of a failed system call's error.
func errno(err error) int32 {
	if e, ok := err.(syscall.Errno); ok {
		return int32(e)
	}
	return int32(syscall.EIO)
}

package relay

import (
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// maxSplice is the most one splice call moves, and the pipe size asked
// for: big enough that bulk data takes few calls.
const maxSplice = 1 << 20

// errNoPipe is returned by splicer.move when no pipe could be made (out
// of descriptors); the caller copies the rest through a buffer.
var errNoPipe = errors.New("splice: no pipe")

// splicer moves bytes from one socket to another with splice(2): socket
// to pipe to socket, never through user space. It works like io.Copy
// between two *net.TCPConn, one difference aside: io.Copy holds its pipe
// (two descriptors and kernel buffers) while it waits for data, through
// every quiet spell of the connection; a splicer gives the pipe back to
// a pool as soon as the source has nothing more to read, and waits
// without it.
//
// Deadlines set on the connections apply to its waits. It is not safe for
// concurrent use.
type splicer struct {
	src, dst syscall.RawConn
	p        *pipe
	inPipe   int
	moved    int
	err      error
	eof      bool
	drainFn  func(fd uintptr) bool
	pumpFn   func(fd uintptr) bool
	dog      *watchdog // touched before each drain (see watchdog)
}

// newSplicer returns a splicer from src to dst, or false when either is
// not a TCP or Unix stream socket.
func newSplicer(dst, src net.Conn) (*splicer, bool) {
	if !spliceable(src) || !spliceable(dst) {
		return nil, false
	}
	rs, err1 := src.(syscall.Conn).SyscallConn()
	rd, err2 := dst.(syscall.Conn).SyscallConn()
	if err1 != nil || err2 != nil {
		return nil, false
	}
	s := &splicer{src: rs, dst: rd}
	s.drainFn = s.drain
	s.pumpFn = s.pump
	return s, true
}

func spliceable(c net.Conn) bool {
	switch c.(type) {
	case *net.TCPConn, *net.UnixConn:
		return true
	}
	return false
}

// move waits until src is readable, then moves what it holds (up to
// 1 MiB) to dst, and returns the number of bytes moved. At the end of src
// it returns 0 and io.EOF. An error after bytes were taken from src
// reports them too: they may be lost.
func (s *splicer) move() (int, error) {
	s.moved, s.err, s.eof = 0, nil, false
	if err := s.src.Read(s.drainFn); err != nil {
		return 0, err
	}
	if s.err != nil {
		return 0, s.err
	}
	if s.eof {
		return 0, io.EOF
	}
	return s.moved, s.flush()
}

// flush pumps what the pipe holds into dst: the end of a move, or, after
// a move whose write failed, the rest of it.
func (s *splicer) flush() error {
	s.err = nil
	for s.inPipe > 0 {
		if err := s.dst.Write(s.pumpFn); err != nil {
			return err
		}
		if s.err != nil {
			return s.err
		}
	}
	return nil
}

// drained reports whether the pipe holds nothing: a failed move then
// failed in its read of src, and otherwise in its write to dst.
func (s *splicer) drained() bool { return s.inPipe == 0 }

// release gives the pipe back to the pool, if the splicer holds one with
// nothing in it, and closes it otherwise (its bytes are lost anyway).
func (s *splicer) release() {
	if s.p == nil {
		return
	}
	if s.inPipe == 0 {
		pipePool.Put(s.p)
	} else {
		s.p.close()
	}
	s.p, s.inPipe = nil, 0
}

// drain splices from the source socket into the pipe; false parks the
// goroutine until the socket is readable, the pipe given back meanwhile.
func (s *splicer) drain(fd uintptr) bool {
	if s.p == nil {
		p, _ := pipePool.Get().(*pipe)
		if p == nil {
			s.err = errNoPipe
			return true
		}
		s.p = p
	}
	s.dog.touch()
	for {
		n, err := unix.Splice(int(fd), nil, s.p.w, nil, maxSplice, unix.SPLICE_F_MOVE|unix.SPLICE_F_NONBLOCK)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			// The pipe is empty here, so the socket is: wait without it.
			s.release()
			return false
		case err != nil:
			s.err = os.NewSyscallError("splice", err)
		case n == 0:
			s.eof = true
		default:
			s.moved = int(n)
			s.inPipe = int(n)
		}
		return true
	}
}

// pump splices from the pipe into the destination socket; false parks the
// goroutine until the socket is writable.
func (s *splicer) pump(fd uintptr) bool {
	for s.inPipe > 0 {
		n, err := unix.Splice(s.p.r, nil, int(fd), nil, s.inPipe, unix.SPLICE_F_MOVE|unix.SPLICE_F_NONBLOCK)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return false
		case err != nil:
			s.err = os.NewSyscallError("splice", err)
			return true
		}
		s.inPipe -= int(n)
	}
	return true
}

// pipe is a pipe's two ends. Pipes live in a pool; one the pool drops is
// closed by a cleanup once unreachable.
type pipe struct {
	r, w    int
	cleanup runtime.Cleanup
}

func (p *pipe) close() {
	p.cleanup.Stop()
	_ = unix.Close(p.r)
	_ = unix.Close(p.w)
}

var pipePool = sync.Pool{New: func() any {
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		return nil
	}
	// A larger pipe means fewer calls; the kernel may refuse (pipe-max-size),
	// and the default 64 KiB works too.
	_, _ = unix.FcntlInt(uintptr(fds[0]), unix.F_SETPIPE_SZ, maxSplice)
	p := &pipe{r: fds[0], w: fds[1]}
	p.cleanup = runtime.AddCleanup(p, func(fds [2]int) {
		_ = unix.Close(fds[0])
		_ = unix.Close(fds[1])
	}, fds)
	return p
}}

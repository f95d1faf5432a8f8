//go:build linux

package relay

import (
	"context"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/sluice-dev/sluice/pkg/chain"
)

// relay is a pair on an event loop: the loop's own descriptors of both
// sockets (duplicates, so that no descriptor number can be reused under
// the loop, whoever closes the net.Conns) and the state of both flows.
type relay struct {
	p    *pair
	fd   [2]int // client, upstream
	d    [2]loopFlow
	done chan struct{} // closed by the loop once it let go of fd

	// ev is the evloop that took the relay, killErr why it must end
	// early; both guarded by the loop's mu.
	ev      *evloop
	killErr error

	// The rest belongs to the loop's goroutine until done is closed.
	slot   int32
	gen    uint32
	can    [2]uint8 // by side: canRead, canWrite, peerShut
	out    [2]bool  // by side: EPOLLOUT watched (see watchOut)
	queued bool     // in the loop's again list
	ended  bool
	err    error
}

// What the edge-triggered events said about a socket. canRead is cleared
// by a read that found nothing, or by a short one (the socket is drained:
// the next byte brings a new edge), unless the peer shut its side, whose
// EOF only a read to the end finds.
const (
	canRead uint8 = 1 << iota
	canWrite
	peerShut
)

// flow is one direction: d[0] client to upstream, d[1] back. A quiet flow
// holds neither a buffer nor a pipe.
type loopFlow struct {
	buf      *[]byte // bytes read but not yet written: buf[off:end]
	off, end int
	pipe     *pipe // held while bulk data moves, nil otherwise
	inPipe   int   // bytes in the pipe
	splice   bool  // bulk: from now on socket → pipe → socket
	noSplice bool  // no pipe could be had: copy to the end
	big      int   // reads in a row of at least bulkRead bytes
	eof      bool  // the source ended
	shut     bool  // and its EOF was passed on
}

// turnBudget bounds the reads of one flow per turn, so that a bulk flow
// leaves the loop to the others now and then.
const turnBudget = 16

// loopSplice lets a test keep bulk flows on the copy path.
var loopSplice atomic.Bool

func init() { loopSplice.Store(true) }

const spliceFlags = unix.SPLICE_F_MOVE | unix.SPLICE_F_NONBLOCK

func (f *loopFlow) release() {
	if f.buf != nil {
		PutBuffer(f.buf)
		f.buf, f.off, f.end = nil, 0, 0
	}
	if f.pipe != nil {
		if f.inPipe == 0 {
			pipePool.Put(f.pipe)
		} else {
			f.pipe.close()
		}
		f.pipe, f.inPipe = nil, 0
	}
}

// loopRelay runs the pair on an event loop when both ends are the sockets
// themselves, and reports false when they are not or no loop could take
// them: the caller then copies with goroutines. It returns once both
// flows ended, one failed, the idle timeout hit, or ctx (the listener's
// generation) was cancelled.
func loopRelay(ctx context.Context, c *chain.Conn, up net.Conn, st *Stats) (bool, error) {
	if noLoop.Load() || !isSocket(c.Conn) || !isSocket(up) {
		return false, nil
	}
	cfd, err := dupFD(c.Conn)
	if err != nil {
		return false, nil
	}
	ufd, err := dupFD(up)
	if err != nil {
		_ = unix.Close(cfd)
		return false, nil
	}
	p := newPair(c, up, st)
	p.quit = make(chan struct{})
	r := &relay{p: p, fd: [2]int{cfd, ufd}, done: make(chan struct{})}
	// Armed before the loop sees the pair: the loop reads the clock.
	// When the time is up, the loop decides (see watchdog.check).
	l := loops.pick()
	p.dog.queues = r
	p.dog.start(c.IdleTimeout(), func() { l.idleCheck(r) })
	if !l.add(r) {
		p.dog.stop()
		r.closeFDs()
		return false, nil
	}
	// The loop holds the sockets through its own descriptors. Closing
	// these takes the sockets out of Go's poller, which would otherwise
	// wake up for their events too.
	_ = c.Conn.Close()
	_ = up.Close()
	select {
	case <-r.done:
	case <-ctx.Done():
		// Forced: the generation's drain timeout. Like the goroutines'
		// read of a closed connection, it is not the peer's fault.
		l.kill(r, fmt.Errorf("%w: %w", ctx.Err(), net.ErrClosed))
		<-r.done
	case <-p.quit:
		l.kill(r, p.err)
		<-r.done
	}
	p.end()
	return true, r.err
}

// unread reports whether bytes wait in either socket (see watchdog). Only
// the loop asks, when it decides whether r is idle, and only while r has
// not ended: its descriptors are open.
func (r *relay) unread() bool { return unread(r.fd[0]) || unread(r.fd[1]) }

// closeFDs closes the loop's descriptors of both sockets.
func (r *relay) closeFDs() {
	for _, fd := range r.fd {
		_ = unix.Close(fd)
	}
}

func dupFD(c net.Conn) (int, error) {
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		return -1, err
	}
	nfd, derr := -1, error(nil)
	err = rc.Control(func(fd uintptr) {
		nfd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	})
	if err == nil {
		err = derr
	}
	return nfd, err
}

// service runs both flows of r as far as its sockets allow, and ends r
// when both flows ended or one failed.
func (e *evloop) service(r *relay) {
	if r.ended {
		return
	}
	for i := range r.d {
		err := e.move(r, i)
		if r.ended {
			return // watchOut failed and ended it
		}
		if err != nil {
			if i == 0 {
				err = fmt.Errorf("client to upstream: %w", err)
			} else {
				err = fmt.Errorf("upstream to client: %w", err)
			}
			e.finish(r, err)
			return
		}
	}
	if r.d[0].shut && r.d[1].shut {
		e.finish(r, nil)
	}
}

// move runs flow i: first what waits for the destination, then reads
// from the source, until a socket would block, the source ended (passed
// on as a half-close), or the turn's budget is spent.
func (e *evloop) move(r *relay, i int) error {
	f := &r.d[i]
	src, dst := i, 1-i
	budget := turnBudget
	for {
		if f.end > f.off || f.inPipe > 0 {
			if r.can[dst]&canWrite == 0 {
				return nil // until EPOLLOUT
			}
			var n int
			var err error
			op := "write"
			if f.inPipe > 0 {
				op = "splice"
				n, err = rawSplice(f.pipe.r, r.fd[dst], f.inPipe)
			} else {
				n, err = rawWrite(r.fd[dst], (*f.buf)[f.off:f.end])
			}
			switch err {
			case nil, syscall.EINTR:
			case syscall.EAGAIN:
				e.blocked(r, dst)
				return nil
			default:
				return os.NewSyscallError(op, err)
			}
			if n > 0 {
				r.count(e, i, n)
				if f.inPipe > 0 {
					f.inPipe -= n
				} else if f.off += n; f.off == f.end {
					PutBuffer(f.buf)
					f.buf, f.off, f.end = nil, 0, 0
				}
			}
			continue
		}
		if f.eof {
			if !f.shut {
				rawShutdown(r.fd[dst])
				f.shut = true
				f.release()
			}
			return nil
		}
		if r.can[src]&canRead == 0 {
			return nil // until EPOLLIN
		}
		if budget == 0 {
			if !r.queued {
				r.queued = true
				e.again = append(e.again, r)
			}
			return nil
		}
		budget--
		var err error
		if f.splice {
			err = e.spliceIn(r, i)
		} else {
			err = e.copyIn(r, i)
		}
		if err != nil {
			return err
		}
	}
}

// copyIn reads one message into the scratch buffer and writes it on at
// once; what the destination does not take waits in a buffer of the
// flow's own.
func (e *evloop) copyIn(r *relay, i int) error {
	f := &r.d[i]
	src, dst := i, 1-i
	n, err := rawRead(r.fd[src], e.scratch)
	switch {
	case err == syscall.EINTR:
		return nil
	case err == syscall.EAGAIN:
		r.can[src] &^= canRead
		return nil
	case err != nil:
		return os.NewSyscallError("read", err)
	case n == 0:
		f.eof = true
		return nil
	}
	r.touch(e)
	if n < len(e.scratch) && r.can[src]&peerShut == 0 {
		r.can[src] &^= canRead
	}
	if n >= bulkRead {
		f.big++
	} else {
		f.big = 0
	}
	if !f.noSplice && loopSplice.Load() && (n == len(e.scratch) || f.big >= bulkReads) {
		f.splice = true
		r.p.st.spliced()
	}
	w := 0
	if r.can[dst]&canWrite != 0 {
		w, err = rawWrite(r.fd[dst], e.scratch[:n])
		switch err {
		case nil:
		case syscall.EAGAIN, syscall.EINTR:
			e.blocked(r, dst)
			w = 0
		default:
			return os.NewSyscallError("write", err)
		}
		if w > 0 {
			r.count(e, i, w)
		}
	}
	if w < n {
		r.p.st.held()
		f.buf = GetBuffer()
		f.off, f.end = 0, copy(*f.buf, e.scratch[w:n])
	}
	return nil
}

// spliceIn moves what the source holds (up to maxSplice bytes) into the
// flow's pipe. Only an EAGAIN, with the pipe empty, says the source is
// drained: a short splice may have been cut by the pipe.
func (e *evloop) spliceIn(r *relay, i int) error {
	f := &r.d[i]
	if f.pipe == nil {
		p, _ := pipePool.Get().(*pipe)
		if p == nil {
			f.splice, f.noSplice = false, true
			return nil
		}
		f.pipe = p
	}
	n, err := rawSplice(r.fd[i], f.pipe.w, maxSplice)
	switch {
	case err == syscall.EINTR:
	case err == syscall.EAGAIN:
		r.can[i] &^= canRead
		pipePool.Put(f.pipe)
		f.pipe = nil
	case err != nil:
		return os.NewSyscallError("splice", err)
	case n == 0:
		f.eof = true
	default:
		f.inPipe = n
		r.touch(e)
	}
	return nil
}

// blocked notes that side's socket would block a write, and watches it
// for room.
func (e *evloop) blocked(r *relay, side int) {
	r.can[side] &^= canWrite
	if !r.out[side] {
		e.watchOut(r, side, true)
	}
}

// count adds n bytes written by flow i to the connection's counters and
// the idle clock.
func (r *relay) count(e *evloop, i, n int) {
	if i == 0 {
		r.p.c.AddIn(int64(n))
	} else {
		r.p.c.AddOut(int64(n))
	}
	r.touch(e)
}

// touch records progress on the idle clock, at the time of the loop's
// turn: precise enough for a timeout, and one clock read per turn rather
// than per call.
func (r *relay) touch(e *evloop) { r.p.dog.touchAt(e.now) }

package relay

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"

	"github.com/sluice-dev/sluice/pkg/chain"
)

// Dir says which of the chain.Conn's counters a copy's bytes go to.
type Dir uint8

const (
	// In counts bytes read from the client (chain.Conn.AddIn).
	In Dir = 1 << iota
	// Out counts bytes written to the client (chain.Conn.AddOut).
	Out
)

// Stats counts the paths copies took, for a handler's tests and
// benchmarks. A nil *Stats counts nothing.
type Stats struct {
	// Splice counts directions that switched to splice(2).
	Splice atomic.Int64
	// Buffered counts directions copied through a buffer because an end
	// is not a socket (a middleware's wrapper).
	Buffered atomic.Int64
	// Held counts messages an event loop, or a flow that passes on
	// within its wait, had to keep
	// because their destination was full.
	Held atomic.Int64
	// Hops counts pairs that moved from their goroutines to an event
	// loop, each once it ended.
	Hops atomic.Int64
}

func (s *Stats) spliced() {
	if s != nil {
		s.Splice.Add(1)
	}
}

func (s *Stats) buffered() {
	if s != nil {
		s.Buffered.Add(1)
	}
}

func (s *Stats) hopped() {
	if s != nil {
		s.Hops.Add(1)
	}
}

func (s *Stats) held() {
	if s != nil {
		s.Held.Add(1)
	}
}

// Copy moves src to dst until src's end, then half-closes dst (see
// chain.CloseWrite), counting the bytes into c as dir says. It ends with
// chain.ErrIdleTimeout when nothing moved for c's idle timeout, enforced
// with the connections' deadlines. Echo is Copy(c, c.Conn, c.Conn, In|Out, st).
func Copy(c *chain.Conn, dst, src net.Conn, dir Dir, st *Stats) error {
	if src == c.Conn {
		// Bytes a handler replays go first, and the copy works on the
		// socket under them (sendReplayed); echo sends them back.
		var to net.Conn
		if dst != src {
			to = dst
		}
		if err := sendReplayed(c, to, dir); err != nil {
			return fmt.Errorf("write: %w", err)
		}
		if dst == src {
			dst = c.Conn
		}
		src = c.Conn
	}
	f := flow{c: c, dst: dst, src: src, dir: dir, st: st}
	f.dl.idle = c.IdleTimeout()
	f.dl.conns[0] = src
	if dst != src {
		f.dl.conns[1] = dst
	}
	if err := f.run(); err != nil {
		return err
	}
	closeWrite(dst)
	return nil
}

// flow is one direction of bytes, src to dst, and how its idleness is
// told: deadlines refreshed before each wait (Copy), or a watchdog shared
// with the other direction (Relay; dl.idle is 0 then).
type flow struct {
	c        *chain.Conn
	dst, src net.Conn
	dir      Dir
	st       *Stats
	dl       deadline
	dog      *watchdog
	p        *pair // Relay's pair, for its hop; nil for Copy
}

// Bulk data is told from small messages by the reads: one that fills the
// whole buffer, or bulkReads reads in a row of at least bulkRead bytes (a
// sender slower than sluice never fills the buffer, however much it
// sends). Small messages are cheaper to copy than to splice: splice(2)
// moves each through a pipe, page by page.
const (
	bulkRead  = BufferSize / 4
	bulkReads = 4
)

// errBulk is the read of a flow that passes on within its wait, saying
// that its reads show bulk data, all of it passed on (see passOn).
var errBulk = errors.New("bulk data")

// directSplice lets a test keep bulk data of the goroutines on the copy
// path (see loopSplice for the event loop's).
var directSplice atomic.Bool

func init() { directSplice.Store(true) }

// run copies until src's EOF (nil) or an error. When both ends are the
// sockets themselves it takes the direct path: no buffer while src is
// quiet, a plain read/write loop for small messages, and splice(2) once
// the reads show bulk data. Otherwise it copies through a pooled buffer.
func (f *flow) run() error {
	if isSocket(f.dst) && isSocket(f.src) {
		if r, ok := newIdleReader(f.src); ok {
			return f.direct(r)
		}
	}
	f.st.buffered()
	return f.buffered()
}

func isSocket(c net.Conn) bool {
	switch c.(type) {
	case *net.TCPConn, *net.UnixConn:
		return true
	}
	return false
}

func (f *flow) wait() error { return f.dl.refresh() }

// count adds n written bytes to the connection's counters and the idle
// clock.
func (f *flow) count(n int) {
	countInto(f.c, f.dir, n)
	f.touch()
}

func countInto(c *chain.Conn, dir Dir, n int) {
	if dir&In != 0 {
		c.AddIn(int64(n))
	}
	if dir&Out != 0 {
		c.AddOut(int64(n))
	}
}

func (f *flow) touch() { f.dog.touch() }

// write writes p to dst, counting what went. The read that gave p
// touched the watchdog already (see watchdog), and count touches it once
// the bytes went: no touch before the write.
func (f *flow) write(p []byte) error {
	w, err := f.dst.Write(p)
	if w > 0 {
		f.count(w)
	}
	if err != nil && f.heldUp(err, false) {
		// Once: the deadline ran out before the write began.
		if err := f.wait(); err != nil {
			return err
		}
		var more int
		more, err = f.dst.Write(p[w:])
		if more > 0 {
			f.count(more)
		}
	}
	if err != nil {
		return fmt.Errorf("write: %w", f.idleErr(err))
	}
	return nil
}

// end turns a read's error into the flow's end: nil at EOF.
func (f *flow) end(err error) error {
	if errors.Is(err, io.EOF) {
		return nil
	}
	return fmt.Errorf("read: %w", f.idleErr(err))
}

// idleErr reports a deadline expiry as chain.ErrIdleTimeout when the
// deadline is the flow's idle timeout.
func (f *flow) idleErr(err error) error {
	if f.dl.idle > 0 {
		return timeoutAsIdle(err)
	}
	return err
}

// direct copies on the sockets themselves, and switches for good to
// splice(2) once the reads show bulk data. Either way a quiet direction
// holds neither a buffer nor a pipe.
func (f *flow) direct(r *idleReader) error {
	defer r.close()
	r.dog = f.dog
	big, msgs := 0, 0
	for {
		if err := f.wait(); err != nil {
			return err
		}
		if r.pass {
			r.dueAt = f.dl.dueAt()
		}
		b, rerr := r.read()
		if n := len(b); n > 0 {
			if r.pass {
				f.st.held() // what the socket had no room for
			}
			if err := f.write(b); err != nil {
				return err
			}
			if n >= bulkRead {
				big++
			} else {
				big = 0
			}
			if (n == BufferSize || big >= bulkReads) && directSplice.Load() {
				if !f.p.bulk() {
					return errHop
				}
				if s, ok := newSplicer(f.dst, f.src); ok {
					return f.spliceFrom(s, r)
				}
			}
			if f.p.tick(f.dir) {
				return errHop
			}
			// A flow that goes on after its first message passes on
			// within its wait from then on (passOn); one that does
			// not (a connection per request) saves its setsockopt.
			if msgs++; msgs == 2 {
				r.passOn(f)
			}
		}
		if rerr == errBulk { // all passed on; passOn took no pair that may hop
			if s, ok := newSplicer(f.dst, f.src); ok {
				return f.spliceFrom(s, r)
			}
			continue
		}
		if rerr != nil {
			if f.p.hopWoke(rerr) {
				return errHop
			}
			if f.heldUp(rerr, true) {
				continue
			}
			return f.end(rerr)
		}
	}
}

// spliceFrom switches to splice(2) for good, once the reads showed bulk
// data: r's buffer goes back to the pool.
func (f *flow) spliceFrom(s *splicer, r *idleReader) error {
	s.dog = f.dog
	r.release()
	f.st.spliced()
	return f.splice(s, r)
}

// heldUp reports whether err is the idle deadline expiring while sluice
// itself was held up (the process stopped, the machine starved of CPU),
// its timer running before the read or write it cut short, rather than
// a peer being idle: for a read, bytes wait unread in src; for a write,
// dst has room. The next wait pushes the deadline on, and the read or
// write goes through.
//
// A write is retried only on a socket: a TLS connection whose write
// timed out is broken for good, so the copy through a wrapper pushes the
// deadline on before it writes instead (see buffered).
func (f *flow) heldUp(err error, read bool) bool {
	if f.dl.idle <= 0 || !chain.IsTimeout(err) {
		return false
	}
	if !read {
		return isSocket(f.dst) && connWritable(f.dst)
	}
	src := f.src
	if src == f.c.Conn {
		src = f.c.Raw() // the accepted socket, whatever wraps it
	}
	return connUnread(src)
}

// splice splices src into dst until src's EOF. Each move returns after at
// most a pipe's worth, so progress reaches the idle clock while a
// transfer runs. When no pipe can be had (out of descriptors), a chunk
// goes through r's buffer instead.
func (f *flow) splice(s *splicer, r *idleReader) error {
	defer s.release()
	for {
		if err := f.wait(); err != nil {
			return err
		}
		var n int
		var err error
		if s.drained() {
			n, err = s.move()
		} else {
			err = s.flush() // the rest of a move whose write was held up
		}
		if n > 0 {
			f.count(n)
		}
		switch {
		case err == nil:
		case errors.Is(err, io.EOF):
			return nil
		case errors.Is(err, errNoPipe):
			b, rerr := r.read()
			if len(b) > 0 {
				if err := f.write(b); err != nil {
					return err
				}
			}
			r.release()
			if rerr != nil {
				return f.end(rerr)
			}
		default:
			// With the pipe empty, the wait that failed was the read's;
			// with bytes left in it, the write's.
			if f.heldUp(err, s.drained()) {
				continue
			}
			return fmt.Errorf("splice: %w", f.idleErr(err))
		}
	}
}

// buffered copies through a pooled buffer: the path for wrapped
// connections.
func (f *flow) buffered() error {
	bufp := GetBuffer()
	defer PutBuffer(bufp)
	buf := *bufp
	for {
		if err := f.wait(); err != nil {
			return err
		}
		f.dog.touch() // before the bytes leave the queue: see watchdog
		n, rerr := f.src.Read(buf)
		if n > 0 {
			// The read may have waited out most of the deadline: a
			// wrapper's write cannot be retried (see heldUp).
			if err := f.wait(); err != nil {
				return err
			}
			if err := f.write(buf[:n]); err != nil {
				return err
			}
		}
		if rerr != nil {
			if f.heldUp(rerr, true) {
				continue
			}
			return f.end(rerr)
		}
	}
}

package echo

import (
	"errors"
	"fmt"
	"io"

	"github.com/sluice-dev/sluice/pkg/chain"
)

// Bulk data is told from small messages by the reads: one that fills the
// whole buffer, or bulkReads reads in a row of at least bulkRead bytes (a
// sender slower than sluice never fills the buffer, however much it
// sends).
const (
	bulkRead  = chain.BufferSize / 4
	bulkReads = 4
)

// echoIdle echoes on the accepted socket itself. Small messages take a
// read/write loop: one read and one write each, as cheap as the simplest
// Go echo. Once the reads show bulk data, the connection switches, for
// good, to splice(2) (echoSplice), which moves the bytes inside the kernel
// instead of copying them through user space. In both modes a quiet
// connection waits without a buffer or a pipe.
func echoIdle(c *chain.Conn, r *chain.IdleReader) error {
	defer r.Close()
	d := idler{c: c.Conn, idle: c.IdleTimeout()}
	big := 0
	for {
		if err := d.refresh(); err != nil {
			return err
		}
		p, rerr := r.Read()
		if n := len(p); n > 0 {
			if err := echoWrite(c, p); err != nil {
				return err
			}
			if n >= bulkRead {
				big++
			} else {
				big = 0
			}
			if n == chain.BufferSize || big >= bulkReads {
				if s, ok := chain.NewSplicer(c.Conn, c.Conn); ok {
					if testHookSplice != nil {
						testHookSplice()
					}
					r.Release()
					return echoSplice(c, s, r, &d)
				}
			}
		}
		if rerr != nil {
			if errors.Is(rerr, io.EOF) {
				return nil
			}
			return fmt.Errorf("echo: read: %w", timeoutAsIdle(rerr))
		}
	}
}

// testHookSplice, set by tests only, runs when a connection switches to
// splice.
var testHookSplice func()

func echoWrite(c *chain.Conn, p []byte) error {
	c.AddIn(int64(len(p)))
	w, err := c.Conn.Write(p)
	c.AddOut(int64(w))
	if err != nil {
		return fmt.Errorf("echo: write: %w", timeoutAsIdle(err))
	}
	return nil
}

// echoSplice splices the socket back into itself until the client closes
// its side. When no pipe can be had (out of descriptors), a chunk goes
// through r's buffer instead.
func echoSplice(c *chain.Conn, s *chain.Splicer, r *chain.IdleReader, d *idler) error {
	defer s.Release()
	for {
		if err := d.refresh(); err != nil {
			return err
		}
		n, err := s.Move()
		c.AddIn(int64(n))
		c.AddOut(int64(n))
		switch {
		case err == nil:
			continue
		case errors.Is(err, io.EOF):
			return nil
		case errors.Is(err, chain.ErrNoPipe):
			p, rerr := r.Read()
			if len(p) > 0 {
				if err := echoWrite(c, p); err != nil {
					return err
				}
			}
			r.Release()
			if rerr != nil {
				if errors.Is(rerr, io.EOF) {
					return nil
				}
				return fmt.Errorf("echo: read: %w", timeoutAsIdle(rerr))
			}
		default:
			return fmt.Errorf("echo: splice: %w", timeoutAsIdle(err))
		}
	}
}

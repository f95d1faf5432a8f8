package proxy

import (
	"errors"
	"io"
	"net"

	"github.com/sluice-dev/sluice/pkg/chain"
)

// Bulk data is told from small messages by the reads: one that fills the
// whole buffer, or bulkReads reads in a row of at least bulkRead bytes (a
// sender slower than sluice never fills the buffer, however much it
// sends). Small messages are cheaper to copy than to splice: splice(2)
// moves each through a pipe, page by page.
const (
	bulkRead  = chain.BufferSize / 4
	bulkReads = 4
)

// directReader returns a reader of src for directLoop when both ends are
// the sockets themselves: a middleware's wrapper never matches, which is
// right, since it wants to see the bytes.
func directReader(dst, src net.Conn) (*chain.IdleReader, bool) {
	if !isSocket(dst) || !isSocket(src) {
		return nil, false
	}
	return chain.NewIdleReader(src)
}

func isSocket(c net.Conn) bool {
	switch c.(type) {
	case *net.TCPConn, *net.UnixConn:
		return true
	}
	return false
}

// directLoop copies src to dst on the sockets themselves: it waits for
// src without a buffer, copies small messages with one read and one write
// each, and switches, for good, to splice(2) once the reads show bulk
// data. Either way a quiet direction holds neither a buffer nor a pipe.
// Progress goes to the pair's idle clock at every read and write.
func (p *pair) directLoop(dst, src net.Conn, r *chain.IdleReader, count func(int64)) error {
	defer r.Close()
	big := 0
	for {
		b, rerr := r.Read()
		if n := len(b); n > 0 {
			p.touch()
			w, werr := dst.Write(b)
			if w > 0 {
				count(int64(w))
				p.touch()
			}
			if werr != nil {
				return werr
			}
			if n >= bulkRead {
				big++
			} else {
				big = 0
			}
			if n == chain.BufferSize || big >= bulkReads {
				if s, ok := chain.NewSplicer(dst, src); ok {
					r.Release()
					p.h.paths.splice.Add(1)
					return p.spliceLoop(dst, src, s, count)
				}
			}
		}
		if rerr != nil {
			if errors.Is(rerr, io.EOF) {
				return nil
			}
			return rerr
		}
	}
}

// spliceLoop splices src into dst until src's EOF. Each Move returns after
// at most 1 MiB, so progress reaches the idle clock while a transfer runs.
// When no pipe can be had (out of descriptors), the rest goes through a
// buffer.
func (p *pair) spliceLoop(dst, src net.Conn, s *chain.Splicer, count func(int64)) error {
	defer s.Release()
	for {
		n, err := s.Move()
		if n > 0 {
			count(int64(n))
			p.touch()
		}
		switch {
		case err == nil:
		case errors.Is(err, io.EOF):
			return nil
		case errors.Is(err, chain.ErrNoPipe):
			s.Release()
			return p.bufferedLoop(dst, src, count)
		default:
			return err
		}
	}
}

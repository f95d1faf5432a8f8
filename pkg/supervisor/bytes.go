package supervisor

import (
	"sync"

	"github.com/sluice-dev/sluice/pkg/metrics"
)

// byteCounts is what connBytes reads: a *chain.Conn, or a UDP flow's
// *chain.Flow (udp.go).
type byteCounts interface {
	BytesIn() int64
	BytesOut() int64
}

// connBytes is an open connection's part of sluice_bytes_total. Terminal
// handlers count bytes on the chain.Conn from their copy loops; what has
// been added to the shared counters so far is kept here, so that a scrape
// (FlushBytes) and the connection's end each add only the difference, and
// a long-lived connection's traffic shows while it happens instead of all
// at once when it closes. Nothing here runs per read.
type connBytes struct {
	c byteCounts
	m *metrics.Listener

	mu      sync.Mutex // a scrape and the connection's end may flush at once
	in, out int64      // already added to the counters
}

func (b *connBytes) flush() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if in := b.c.BytesIn(); in > b.in {
		b.m.BytesIn.Add(float64(in - b.in))
		b.in = in
	}
	if out := b.c.BytesOut(); out > b.out {
		b.m.BytesOut.Add(float64(out - b.out))
		b.out = out
	}
}

// FlushBytes adds the bytes moved so far by open connections to
// sluice_bytes_total. The admin endpoint calls it before each scrape.
func (s *Supervisor) FlushBytes() {
	for _, g := range s.gens.list() {
		g.flushBytes()
	}
}

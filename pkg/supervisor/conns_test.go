package supervisor

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/sluice-dev/sluice/pkg/chain"
	"github.com/sluice-dev/sluice/pkg/config"
	"github.com/sluice-dev/sluice/pkg/metrics"
)

func TestConnList(t *testing.T) {
	var l connList
	a, b, c := new(tracked), new(tracked), new(tracked)
	l.push(a)
	l.push(b)
	l.push(c)
	walk := func() []*tracked {
		var out []*tracked
		for x := l.head; x != nil; x = x.next {
			out = append(out, x)
		}
		return out
	}
	if got := walk(); len(got) != 3 || l.n != 3 || got[0] != c || got[2] != a {
		t.Fatalf("after 3 pushes: %v (n=%d)", got, l.n)
	}
	l.remove(b) // middle
	if got := walk(); len(got) != 2 || got[0] != c || got[1] != a || c.next != a || a.prev != c {
		t.Fatalf("after removing the middle: %v", got)
	}
	l.remove(c) // head
	l.remove(a) // last
	if l.head != nil || l.n != 0 {
		t.Fatalf("list not empty: head %p n %d", l.head, l.n)
	}
}

// doneHandler ends every connection at once and says so.
type doneHandler struct{ done chan struct{} }

func (h doneHandler) ServeStream(context.Context, *chain.Conn) error {
	h.done <- struct{}{}
	return nil
}

// TestAcceptPathAllocations: what the supervisor adds to an accepted
// connection is one record and the goroutine's start, not a record plus
// map or sync.Map entries.
func TestAcceptPathAllocations(t *testing.T) {
	h := doneHandler{done: make(chan struct{})}
	s := New(hclog.NewNullLogger(), nil)
	g := newGeneration(config.Listener{Name: "t", Network: "tcp"}, hclog.NewNullLogger(), nil, h,
		metrics.New().ForListener("t"), new(atomic.Int64))
	s.gens.add(g)
	r := &runner{s: s}
	r.gen.Store(g)

	conns := make([]net.Conn, 0, 400)
	for range cap(conns) {
		a, b := net.Pipe()
		defer b.Close()
		conns = append(conns, a)
	}
	var mu sync.Mutex
	next := func() net.Conn {
		mu.Lock()
		defer mu.Unlock()
		c := conns[0]
		conns = conns[1:]
		return c
	}
	r.handle(next()) // warm up
	<-h.done
	allocs := testing.AllocsPerRun(200, func() {
		r.handle(next())
		<-h.done
	})
	s.wg.Wait()
	t.Logf("%.2f allocations per accepted connection", allocs)
	// One record and the go statement's closure; the goroutine itself
	// comes from the runtime's free list.
	if allocs > 2 {
		t.Errorf("%.1f allocations per accepted connection, want at most 2", allocs)
	}
	if n := g.active(); n != 0 {
		t.Errorf("%d connections still registered", n)
	}
}

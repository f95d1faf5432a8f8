package supervisor

import (
	"sync"

	"github.com/sluice-dev/sluice/pkg/chain"
)

// tracked is one open connection as the supervisor keeps it: the
// chain.Conn that handlers see, its share of sluice_bytes_total, and its
// links in its generation's list. It is the one allocation the supervisor
// makes per connection: a map or sync.Map entry per connection would add
// allocations, hashing and their locks to every accept and every close.
type tracked struct {
	conn       chain.Conn
	bytes      connBytes
	g          *generation
	prev, next *tracked
	// goKeepAlive: Go set its default keepalive on the socket (see
	// listener.GoKeepAlive).
	goKeepAlive bool
}

// connList is an intrusive doubly linked list of tracked connections:
// O(1) insert and removal, no allocation. Its owner locks it.
type connList struct {
	head *tracked
	n    int
}

func (l *connList) push(t *tracked) {
	t.prev, t.next = nil, l.head
	if l.head != nil {
		l.head.prev = t
	}
	l.head = t
	l.n++
}

func (l *connList) remove(t *tracked) {
	if t.prev != nil {
		t.prev.next = t.next
	} else {
		l.head = t.next
	}
	if t.next != nil {
		t.next.prev = t.prev
	}
	t.prev, t.next = nil, nil
	l.n--
}

// genSet is every generation that may hold open connections: each
// listener's current one and the retired ones still draining. FlushBytes
// walks it; nothing on the per-connection path touches it.
type genSet struct {
	mu sync.Mutex
	m  map[*generation]struct{}
}

func (s *genSet) add(g *generation) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = make(map[*generation]struct{})
	}
	s.m[g] = struct{}{}
	g.set = s
}

func (s *genSet) remove(g *generation) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, g)
}

func (s *genSet) list() []*generation {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*generation, 0, len(s.m))
	for g := range s.m {
		out = append(out, g)
	}
	return out
}

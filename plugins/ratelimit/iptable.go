package ratelimit

import (
	"container/list"
	"math"
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// ipTable holds the per-address limits of one listener. It never holds
// more than maxEntries addresses, and it needs no goroutine: expired
// entries are swept lazily by admit, from the front of the idle list.
//
// An entry with open connections always stays (its count is needed). An
// idle one (no open connection) is dropped once its token bucket would be
// full again, when forgetting it loses nothing; without a per-address rate
// that is at once. When the table is full, the least recently used idle
// entry is dropped early (it loses its spent tokens, as nginx's limit_req
// does); when every entry has open connections, the new address is refused
// with reason per_ip_full.
type ipTable struct {
	rate    rate.Limit // 0: no per-address rate
	burst   int
	max     int // 0: no per-address cap
	cap     int
	idleTTL time.Duration // how long an idle entry is worth keeping

	mu      sync.Mutex
	entries map[netip.Addr]*ipEntry
	// idle holds the entries without open connections, least recently
	// touched first. Touches only ever move an entry to the back, so the
	// front is always the first to expire.
	idle list.List
}

type ipEntry struct {
	addr    netip.Addr
	lim     *rate.Limiter // nil without a per-address rate
	active  int           // open connections from addr
	touched time.Time     // when it last went idle or was refused
	elem    *list.Element // in idle while active == 0
}

func newIPTable(r rate.Limit, burst, maxConns, maxEntries int) *ipTable {
	t := &ipTable{
		rate:    r,
		burst:   burst,
		max:     maxConns,
		cap:     maxEntries,
		entries: make(map[netip.Addr]*ipEntry),
	}
	if r > 0 {
		// Tokens are only spent by admitted connections, all before the
		// entry last went idle; burst/rate later the bucket is full.
		// Clamped: a rate of one a century must not overflow into a
		// negative TTL.
		ttl := math.Ceil(float64(burst) / float64(r) * float64(time.Second))
		t.idleTTL = time.Duration(min(ttl, float64(math.MaxInt64/2)))
	}
	return t
}

// admit takes a place for a connection from addr, or says why not.
func (t *ipTable) admit(addr netip.Addr, now time.Time) (*ipEntry, reason) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.sweep(now)
	e := t.entries[addr]
	if e == nil {
		if len(t.entries) >= t.cap && !t.evictOne() {
			return nil, reasonIPFull
		}
		e = &ipEntry{addr: addr}
		if t.rate > 0 {
			e.lim = rate.NewLimiter(t.rate, t.burst)
		}
		t.entries[addr] = e
	}
	if t.max > 0 && e.active >= t.max {
		return nil, reasonIPMax
	}
	if e.lim != nil && !e.lim.AllowN(now, 1) {
		t.touch(e, now)
		return nil, reasonIPRate
	}
	if e.elem != nil {
		t.idle.Remove(e.elem)
		e.elem = nil
	}
	e.active++
	return e, none
}

// release gives back the place taken by admit.
func (t *ipTable) release(e *ipEntry, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e.active--
	if e.active > 0 {
		return
	}
	if e.lim == nil {
		delete(t.entries, e.addr) // nothing worth remembering
		return
	}
	t.touch(e, now)
}

// touch marks an idle entry as used now: it moves to the back of the idle
// list. An entry with open connections is not in that list and stays put.
func (t *ipTable) touch(e *ipEntry, now time.Time) {
	if e.active > 0 {
		return
	}
	e.touched = now
	if e.elem != nil {
		t.idle.MoveToBack(e.elem)
	} else {
		e.elem = t.idle.PushBack(e)
	}
}

// sweep drops the idle entries whose buckets are full again. Each entry is
// dropped once, so the cost is spread over the admits that created them.
func (t *ipTable) sweep(now time.Time) {
	for f := t.idle.Front(); f != nil; f = t.idle.Front() {
		e := f.Value.(*ipEntry)
		if now.Sub(e.touched) < t.idleTTL {
			return
		}
		t.drop(e)
	}
}

// evictOne drops the least recently used idle entry, if there is one.
func (t *ipTable) evictOne() bool {
	f := t.idle.Front()
	if f == nil {
		return false
	}
	t.drop(f.Value.(*ipEntry))
	return true
}

func (t *ipTable) drop(e *ipEntry) {
	t.idle.Remove(e.elem)
	e.elem = nil
	delete(t.entries, e.addr)
}

// len is the number of addresses tracked.
func (t *ipTable) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.entries)
}

// sourceOf is the key of a connection's source: its IP address (an
// IPv4-mapped IPv6 address counts as the IPv4 one), or, for anything that
// is not IP (Unix sockets), the zero Addr, one key shared by all.
func sourceOf(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}

// allow spends one token of addr's bucket for a datagram and reports
// whether there was one. It is the packet side's admit: a datagram holds
// nothing once served, so entries never have open connections, every
// entry is in the idle list, and a full table always makes room by
// forgetting the least recently used address (a flood of new source
// addresses costs bounded memory and never refuses a known client). An
// entry expires once its bucket would be full again, as with per_ip.
func (t *ipTable) allow(addr netip.Addr, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.sweep(now)
	e := t.entries[addr]
	if e == nil {
		if len(t.entries) >= t.cap {
			t.evictOne()
		}
		e = &ipEntry{addr: addr, lim: rate.NewLimiter(t.rate, t.burst)}
		t.entries[addr] = e
	}
	ok := e.lim.AllowN(now, 1)
	t.touch(e, now)
	return ok
}

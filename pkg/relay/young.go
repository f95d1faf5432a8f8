package relay

import (
	"sync"
	"sync/atomic"
	"time"
)

// armDelay is how long a relay lives before its idle watchdog gets a
// timer. Most relays carry one request and its answer and end within a
// millisecond; a timer armed and stopped for each costs them more than
// their copying (the runtime's timer heap, its locks, the timer itself).
// So a young watchdog waits in a list instead, and one sweeper goroutine,
// running only while any waits, gives those still running after armDelay
// their timer, set for the rest of the timeout: the timeout is kept to
// the same instant. Timeouts under 4 × armDelay are armed at once.
const armDelay = 100 * time.Millisecond

// dogShards spreads the young watchdogs over lists with a lock each, so
// that connections starting and ending on many CPUs do not queue on one.
const dogShards = 16

// dogList is the young watchdogs of one shard, oldest first.
type dogList struct {
	mu         sync.Mutex
	head, tail *watchdog
}

// dogLists is every shard, and the sweeper's state.
type dogLists struct {
	shards   [dogShards]dogList
	next     atomic.Uint32 // round-robin over the shards
	sweeping atomic.Bool   // a sweeper runs
}

// youngDogs is the process's young watchdogs. Its sweeper is started by
// add when none runs, and ends once every list is empty.
var youngDogs dogLists

// add puts w, started just now, at the tail of a list, and makes sure a
// sweeper runs.
func (d *dogLists) add(w *watchdog) {
	l := &d.shards[d.next.Add(1)%dogShards]
	l.mu.Lock()
	w.list, w.prev, w.next = l, l.tail, nil
	if l.tail != nil {
		l.tail.next = w
	} else {
		l.head = w
	}
	l.tail = w
	w.young.Store(true)
	l.mu.Unlock()
	if !d.sweeping.Load() && d.sweeping.CompareAndSwap(false, true) {
		go d.sweep()
	}
}

// remove takes w out of l, if it is still there.
func (l *dogList) remove(w *watchdog) {
	l.mu.Lock()
	if w.young.Load() {
		l.unlink(w)
	}
	l.mu.Unlock()
}

// unlink takes w out; l.mu is held.
func (l *dogList) unlink(w *watchdog) {
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		l.head = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	} else {
		l.tail = w.prev
	}
	w.prev, w.next = nil, nil
	w.young.Store(false)
}

// sweep arms, every armDelay, the watchdogs that have waited that long,
// until no list holds any. A watchdog added while it decides to end
// starts it again (add sees sweeping false then), or it sees the
// watchdog on its last look and goes on.
func (d *dogLists) sweep() {
	var due []*watchdog
	for {
		time.Sleep(armDelay)
		left := false
		for i := range d.shards {
			due = d.shards[i].takeDue(due[:0], time.Now())
			left = left || d.shards[i].waiting()
			for _, w := range due {
				w.arm(max(w.idle-time.Since(w.base), 0))
			}
			clear(due)
		}
		if left {
			continue
		}
		d.sweeping.Store(false)
		if !d.anyWaiting() || !d.sweeping.CompareAndSwap(false, true) {
			return
		}
	}
}

// takeDue unlinks the watchdogs of l that started armDelay or more
// before now, appending them to due: they are at the head, oldest first.
func (l *dogList) takeDue(due []*watchdog, now time.Time) []*watchdog {
	l.mu.Lock()
	defer l.mu.Unlock()
	for w := l.head; w != nil && now.Sub(w.base) >= armDelay; w = l.head {
		l.unlink(w)
		due = append(due, w)
	}
	return due
}

func (l *dogList) waiting() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.head != nil
}

func (d *dogLists) anyWaiting() bool {
	for i := range d.shards {
		if d.shards[i].waiting() {
			return true
		}
	}
	return false
}

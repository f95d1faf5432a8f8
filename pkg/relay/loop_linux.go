//go:build linux

package relay

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sluice-dev/sluice/pkg/chain"
)

// Why an event loop: two goroutines per pair, each parked in Go's poller,
// cost per message a goroutine wake-up, a read, a write, and a read that
// finds nothing (EAGAIN), since RawConn.Read resets the socket's readiness
// and only an EAGAIN proves an edge-triggered socket drained. A loop that
// owns its own epoll instance knows a socket drained from a short read,
// wakes once for all the pairs that are ready, and costs per message a
// read and a write.
//
// The loop's epoll instance is itself registered with Go's poller, so a
// loop with nothing to do parks as a goroutine, not as a thread blocked
// in epoll_wait.

// loopSet is the process's loops: one per GOMAXPROCS, each started on its
// first pair and ended when its last pair ends, so that a sluice with no
// stream connection runs no loop goroutine and holds no descriptor.
type loopSet struct {
	once  sync.Once
	loops []loop
	next  atomic.Uint32
}

var loops loopSet

func (s *loopSet) pick() *loop {
	s.once.Do(func() {
		s.loops = make([]loop, runtime.GOMAXPROCS(0))
	})
	return &s.loops[int(s.next.Add(1))%len(s.loops)]
}

// loop hands relays to its running evloop, starting one when none runs.
type loop struct {
	mu  sync.Mutex
	run *evloop // nil when no goroutine runs
}

// evloop is one run of a loop's goroutine, with its epoll instance and an
// eventfd through which other goroutines wake it for new work.
type evloop struct {
	file *os.File // the epoll instance, as Go's poller knows it
	epfd int
	evfd int

	// adds, kills and idle are guarded by the loop's mu; idle holds the
	// relays whose watchdog asks whether they are idle.
	adds, kills, idle []*relay

	// The rest belongs to the loop's goroutine.
	slots   []*relay // by slot, the index kept in each epoll event
	free    []int32
	n       int // relays in slots
	gen     uint32
	again   []*relay // relays with work left over from their last turn
	events  [128]unix.EpollEvent
	scratch []byte
	now     time.Time // when this turn's events were taken
}

// busyTurn is the number of events that makes a turn look again before
// parking, maxSpins how many times in a row.
const (
	busyTurn = 4
	maxSpins = 4
)

// testHookTurn, when set by a test, runs at the start of every turn with
// the loop.
var testHookTurn atomic.Pointer[func(*evloop)]

// wakeSlot marks the eventfd's epoll events.
const wakeSlot = -1

// add hands r to the loop; false means no loop could be started (out of
// descriptors), and the caller copies with goroutines.
func (l *loop) add(r *relay) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.run == nil {
		ev, err := newEvloop()
		if err != nil {
			return false
		}
		l.run = ev
		// The goroutine is owned by the loop: it ends once it has no
		// relay left and none queued (see park).
		go l.serve(ev)
	}
	r.ev = l.run
	l.run.adds = append(l.run.adds, r)
	if l.run.pending() == 1 {
		l.run.wake()
	}
	return true
}

// kill asks r's loop to end r with err; r.done is closed once it has. A
// relay that already ended is left alone.
func (l *loop) kill(r *relay, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.run == nil || r.ev != l.run {
		return // its evloop ended, so r did
	}
	r.killErr = err
	l.run.kills = append(l.run.kills, r)
	if l.run.pending() == 1 {
		l.run.wake()
	}
}

// idleCheck asks r's loop whether r is idle, now that its watchdog's time
// is up, and to end it if so. The loop answers after the events of its
// current turn, each relay it moved recorded as moved (see heldUp). A
// relay that already ended is left alone.
func (l *loop) idleCheck(r *relay) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.run == nil || r.ev != l.run {
		return
	}
	l.run.idle = append(l.run.idle, r)
	if l.run.pending() == 1 {
		l.run.wake()
	}
}

// pending is the number of commands queued for the loop; the caller holds
// the loop's mu.
func (e *evloop) pending() int { return len(e.adds) + len(e.kills) + len(e.idle) }

func newEvloop() (*evloop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	evfd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		_ = unix.Close(epfd)
		return nil, err
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLET, Fd: wakeSlot}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, evfd, &ev); err != nil {
		_ = unix.Close(epfd)
		_ = unix.Close(evfd)
		return nil, err
	}
	// Non-blocking, so that os.NewFile registers it with Go's poller:
	// waiting for it then parks the goroutine.
	if err := unix.SetNonblock(epfd, true); err != nil {
		_ = unix.Close(epfd)
		_ = unix.Close(evfd)
		return nil, err
	}
	return &evloop{file: os.NewFile(uintptr(epfd), "epoll"), epfd: epfd, evfd: evfd}, nil
}

func (e *evloop) wake() {
	one := [8]byte{1}
	_, _ = unix.Write(e.evfd, one[:])
}

// serve runs ev until park finds it with nothing to do, then closes its
// descriptors.
func (l *loop) serve(ev *evloop) {
	// The loop reads every small message into this one buffer; a message
	// that cannot be written at once is copied to a buffer of its flow.
	bufp := GetBuffer()
	ev.scratch = *bufp
	defer PutBuffer(bufp)
	defer ev.close()
	err := l.turns(ev)
	if err != nil {
		// The epoll instance failed under the loop, which its owner
		// never allows, or the loop panicked: end whatever it holds
		// rather than hang it or take the process down.
		l.mu.Lock()
		if l.run == ev {
			l.run = nil
		}
		adds := ev.adds
		ev.adds = nil
		l.mu.Unlock()
		for _, r := range adds {
			ev.register(r)
		}
		for _, r := range ev.slots {
			if r != nil && !r.ended {
				ev.finish(r, err)
			}
		}
	}
}

// turns runs the loop's turns on Go's poller until the loop is idle. A
// panic in a turn (a bug in the loop) is turned into an error, so that it
// ends the loop's relays, as a panic in a connection's goroutine ends that
// connection, and never the process.
func (l *loop) turns(ev *evloop) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("event loop panicked: %v", p)
			// Logged once, on the logger of a connection it held: the
			// loop serves every listener and has none of its own.
			for _, r := range ev.slots {
				if r != nil && !r.ended {
					r.p.c.Logger().Error("event loop panicked; its connections are closed", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
					break
				}
			}
		}
	}()
	rc, err := ev.file.SyscallConn()
	if err != nil {
		return err
	}
	return rc.Read(func(uintptr) bool { return ev.turn(l) })
}

func (e *evloop) close() {
	_ = e.file.Close()
	_ = unix.Close(e.evfd)
}

// turn is called by Go's poller whenever the epoll instance may have
// events. It handles them and returns false to park until the next ones,
// or true, with the loop idle, to end the goroutine.
//
// Returning false right after handling events is safe: an event that
// came after this turn's epoll_wait made the epoll instance readable
// again, which Go's poller saw or will see.
func (e *evloop) turn(l *loop) bool {
	spins := 0
	for {
		if hook := testHookTurn.Load(); hook != nil {
			(*hook)(e)
		}
		n, err := rawEpollPoll(e.epfd, e.events[:])
		if err == syscall.EINTR {
			continue
		}
		woken := false
		if n > 0 {
			e.now = time.Now()
		}
		for _, ev := range e.events[:max(n, 0)] {
			if ev.Fd == wakeSlot {
				woken = true
				continue
			}
			r := e.slots[ev.Fd]
			if r == nil || r.gen != uint32(ev.Pad)>>1 {
				continue // the relay ended in this batch
			}
			side := ev.Pad & 1
			if ev.Events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
				r.can[side] |= canRead
			}
			if ev.Events&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
				r.can[side] |= peerShut
			}
			if ev.Events&(unix.EPOLLOUT|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
				r.can[side] |= canWrite
				if r.out[side] {
					e.watchOut(r, int(side), false)
				}
			}
			e.service(r)
		}
		if n > 0 {
			e.heldUp(n)
		}
		if woken {
			e.commands(l)
		}
		if len(e.again) > 0 {
			again := e.again
			e.again = nil
			e.now = time.Now()
			for _, r := range again {
				r.queued = false
				e.service(r)
			}
			continue
		}
		if woken || n == len(e.events) {
			continue // new relays' first events, or more events
		}
		// A busy turn took long enough for more events to come, most
		// likely: looking again costs one call, where parking costs a
		// trip through the scheduler and Go's poller. A few times only,
		// so that the loop still yields to other goroutines.
		if n >= busyTurn && spins < maxSpins {
			spins++
			continue
		}
		if e.n == 0 && e.park(l) {
			return true
		}
		return false
	}
}

// heldUpTurn is how long a turn may take before its clock reading is
// too old to stand for when its relays moved.
const heldUpTurn = 50 * time.Millisecond

// heldUp gives the relays of this turn's n events a fresh touch when the
// turn took long: progress is recorded at the time the events were taken
// (e.now), and a sluice held up in the middle of a turn (stopped, starved
// of CPU) would record the bytes it read on resume as moved before the
// pause, which the idle watchdog, woken on resume too, takes for a quiet
// spell. One clock reading per turn.
func (e *evloop) heldUp(n int) {
	now := time.Now()
	if now.Sub(e.now) < heldUpTurn {
		return
	}
	e.now = now
	for _, ev := range e.events[:n] {
		if ev.Fd == wakeSlot {
			continue
		}
		if r := e.slots[ev.Fd]; r != nil && r.gen == uint32(ev.Pad)>>1 && !r.ended {
			r.touch(e)
		}
	}
}

// park ends the run when it holds no relay and none is queued.
func (e *evloop) park(l *loop) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e.pending() > 0 {
		return false // the eventfd says so too
	}
	l.run = nil
	return true
}

// commands takes the queued relays and kills.
func (e *evloop) commands(l *loop) {
	var b [8]byte
	_, _ = unix.Read(e.evfd, b[:])
	l.mu.Lock()
	adds, kills, idle := e.adds, e.kills, e.idle
	e.adds, e.kills, e.idle = nil, nil, nil
	l.mu.Unlock()
	for _, r := range adds {
		e.register(r)
	}
	for _, r := range kills {
		if !r.ended {
			e.finish(r, r.killErr)
		}
	}
	for _, r := range idle {
		if !r.ended && r.p.dog.due() {
			e.finish(r, chain.ErrIdleTimeout)
		}
	}
}

// register gives r a slot and watches both its sockets, edge-triggered:
// the first events come at once, for what is already readable or
// writable.
func (e *evloop) register(r *relay) {
	var slot int32
	if k := len(e.free); k > 0 {
		slot = e.free[k-1]
		e.free = e.free[:k-1]
	} else {
		slot = int32(len(e.slots))
		e.slots = append(e.slots, nil)
	}
	e.gen++
	r.slot, r.gen = slot, e.gen&(1<<31-1)
	e.slots[slot] = r
	e.n++
	for side, fd := range r.fd {
		// A connected socket can take bytes; EPOLLOUT is watched only
		// once a write would block (see watchOut).
		r.can[side] |= canWrite
		ev := unix.EpollEvent{Events: readEvents, Fd: slot, Pad: int32(r.gen<<1) | int32(side)}
		if err := unix.EpollCtl(e.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
			e.finish(r, os.NewSyscallError("epoll_ctl", err))
			return
		}
	}
}

// readEvents are what the loop always watches on a socket, edge-triggered.
const readEvents = unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLET

// watchOut adds EPOLLOUT to a socket's events when a write would block,
// and takes it off once the socket took bytes again. Watched all the
// time, EPOLLOUT would wake the loop on every ACK that frees room in a
// send buffer: during bulk transfers, most of its wake-ups, each one a
// trip through the scheduler for nothing to do. Re-adding it reports the
// socket at once if it became writable meanwhile, so no edge is lost.
func (e *evloop) watchOut(r *relay, side int, on bool) {
	ev := unix.EpollEvent{Events: readEvents, Fd: r.slot, Pad: int32(r.gen<<1) | int32(side)}
	if on {
		ev.Events |= unix.EPOLLOUT
	}
	if err := unix.EpollCtl(e.epfd, unix.EPOLL_CTL_MOD, r.fd[side], &ev); err != nil {
		// Without the event the flow would wait for ever: end it.
		e.finish(r, os.NewSyscallError("epoll_ctl", err))
		return
	}
	r.out[side] = on
}

// finish ends r: its descriptors closed, its pipes and buffers given
// back, its waiter told why.
func (e *evloop) finish(r *relay, err error) {
	r.ended = true
	for _, fd := range r.fd {
		// Closing the last descriptor of a socket would drop it from
		// the epoll instance too; deleting first does not depend on it.
		_ = unix.EpollCtl(e.epfd, unix.EPOLL_CTL_DEL, fd, nil)
	}
	r.closeFDs()
	for i := range r.d {
		r.d[i].release()
	}
	e.slots[r.slot] = nil
	e.free = append(e.free, r.slot)
	e.n--
	r.err = err
	close(r.done)
}

// loopAvailable: Linux has the event loop.
const loopAvailable = true

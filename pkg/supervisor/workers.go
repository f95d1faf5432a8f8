package supervisor

import (
	"sync"
	"time"
)

// Why workers: a goroutine starts with a small stack, and serving a
// connection (dialing an upstream through net, above all) grows it two or
// three times, copying it each time. A goroutine that served a connection
// keeps its grown stack (until the garbage collector finds it mostly
// unused), so the next connection goes to one of those when one waits,
// and a new goroutine starts only when none does. The same goroutines run
// the ones a handler starts for a connection (chain.Conn.Go: the relay's
// second direction).

// idleWorkerTime is how long a worker waits for work before it ends: a
// burst of connections leaves no crowd of goroutines behind.
var idleWorkerTime = 10 * time.Second

// workers hands connections, and functions, to goroutines that wait for
// them. They are the supervisor's (counted in its wg) and end at Shutdown
// or after idleWorkerTime without work.
type workers struct {
	s *Supervisor
	// goFn is do as a func value, made once: chain.Conn.SetGo takes it
	// for every connection without an allocation.
	goFn func(func())

	mu     sync.Mutex
	idle   []*worker // the most recently freed last
	reaper *time.Timer
	closed bool
}

// task is a connection to serve, or a function to run.
type task struct {
	t *tracked
	f func()
}

type worker struct {
	next  chan task // a zero task: end
	since time.Time // when it began to wait
}

func (ws *workers) init(s *Supervisor) {
	ws.s = s
	ws.goFn = ws.do
}

// serve runs the chain on t on a waiting worker, or on a new one.
func (ws *workers) serve(t *tracked) { ws.start(task{t: t}) }

// do runs f on a waiting worker, or on a new one (chain.Conn.Go).
func (ws *workers) do(f func()) { ws.start(task{f: f}) }

func (ws *workers) start(k task) {
	ws.mu.Lock()
	if n := len(ws.idle); n > 0 {
		w := ws.idle[n-1]
		ws.idle[n-1] = nil
		ws.idle = ws.idle[:n-1]
		ws.mu.Unlock()
		w.next <- k
		return
	}
	ws.mu.Unlock()
	ws.s.wg.Add(1)
	go ws.run(&worker{next: make(chan task, 1)}, k)
}

// run is a worker's goroutine: it ends when wait says so, or when it is
// handed the zero task.
func (ws *workers) run(w *worker, k task) {
	defer ws.s.wg.Done()
	for k.t != nil || k.f != nil {
		if k.t != nil {
			ws.s.serve(k.t)
		} else {
			k.f()
		}
		k = task{} // let go of what it held while it waits
		if !ws.wait(w) {
			return
		}
		k = <-w.next
	}
}

// wait puts w on the idle list; false when the supervisor is closing.
func (ws *workers) wait(w *worker) bool {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.closed {
		return false
	}
	w.since = time.Now()
	ws.idle = append(ws.idle, w)
	if ws.reaper == nil {
		ws.reaper = time.AfterFunc(idleWorkerTime, ws.reap)
	}
	return true
}

// reap ends the workers that waited idleWorkerTime or longer: the
// oldest, at the start of the list.
func (ws *workers) reap() {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	ws.reaper = nil
	if ws.closed {
		return
	}
	cut := time.Now().Add(-idleWorkerTime)
	k := 0
	for k < len(ws.idle) && !ws.idle[k].since.After(cut) {
		ws.idle[k].next <- task{}
		k++
	}
	n := copy(ws.idle, ws.idle[k:])
	clear(ws.idle[n:])
	ws.idle = ws.idle[:n]
	if n > 0 {
		ws.reaper = time.AfterFunc(ws.idle[0].since.Sub(cut), ws.reap)
	}
}

// close ends the waiting workers, and every other one once its work
// ends.
func (ws *workers) close() {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	ws.closed = true
	if ws.reaper != nil {
		ws.reaper.Stop()
		ws.reaper = nil
	}
	for _, w := range ws.idle {
		w.next <- task{}
	}
	ws.idle = nil
}

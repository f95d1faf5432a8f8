package logging

import (
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// MaxQueued is how many bytes of log lines an Output holds for a sink
// that does not take them: about five thousand access log lines.
const MaxQueued = 1 << 20

// Output is what log lines go through on their way to the process's log
// sink (stderr: a pipe to journald, a terminal, a log shipper). The sink
// may stop taking lines — journald stalled, a terminal on hold, a reader
// that went away — and a log line is written where a connection ends, so
// a write that waited for the sink would hold every connection of every
// listener. Output queues lines in memory instead, up to MaxQueued bytes,
// and one goroutine writes them in order; a line that finds the queue full
// is dropped and counted, as is a line the sink refused. When the sink
// takes lines again, one more line says how many were lost.
type Output struct {
	w io.Writer

	mu      sync.Mutex
	queue   []byte // lines waiting, in order
	lost    uint64 // lines dropped since the last notice
	closing bool
	wake    chan struct{} // cap 1: lines are waiting, or Close
	done    chan struct{} // closed when the writer goroutine has ended

	dropped atomic.Uint64 // every line dropped, for the metric

	// notice formats the line that reports n lost lines, in the logger's
	// format; nil writes none.
	notice atomic.Pointer[func(n uint64)]
}

// NewOutput starts an Output writing to w. Close stops it.
func NewOutput(w io.Writer) *Output {
	o := &Output{w: w, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go o.run()
	return o
}

// Write queues a copy of p, which is one log line (hclog writes each line
// with one call). It never waits for the sink and never fails: a line that
// does not fit is dropped and counted.
func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	if o.closing || len(o.queue)+len(p) > MaxQueued {
		o.lost++
		o.mu.Unlock()
		o.dropped.Add(1)
		return len(p), nil
	}
	o.queue = append(o.queue, p...)
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
	return len(p), nil
}

// Dropped returns how many lines were lost since the Output started: the
// queue was full, or the sink refused them.
func (o *Output) Dropped() uint64 { return o.dropped.Load() }

// onLoss sets what reports lost lines once the sink takes lines again.
func (o *Output) onLoss(f func(n uint64)) { o.notice.Store(&f) }

// run writes what is queued, all of it in one write, until Close.
func (o *Output) run() {
	defer close(o.done)
	var batch []byte
	for {
		<-o.wake
		o.mu.Lock()
		batch, o.queue = o.queue, batch[:0]
		lost := o.lost
		o.lost = 0
		closing := o.closing
		o.mu.Unlock()
		// Lines are lost only to a full queue (so batch holds lines, and
		// their write says whether the sink is back) or after Close.
		if len(batch) > 0 {
			if _, err := o.w.Write(batch); err != nil {
				// A sink that went away (EPIPE) or broke: these
				// lines are lost like the ones that found no room.
				o.dropped.Add(uint64(countLines(batch)))
			} else if lost > 0 && !closing {
				if f := o.notice.Load(); f != nil {
					(*f)(lost)
				}
			}
		}
		if closing {
			return
		}
	}
}

// Close writes what is queued and stops the Output, waiting at most
// timeout for a sink that does not take it; lines written after Close are
// dropped. It reports whether everything queued went out.
func (o *Output) Close(timeout time.Duration) bool {
	o.mu.Lock()
	if !o.closing {
		o.closing = true
		select {
		case o.wake <- struct{}{}:
		default:
		}
	}
	o.mu.Unlock()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-o.done:
		return true
	case <-t.C:
		// The writer is stuck in a write to the sink; the process is
		// about to exit, which ends it.
		return false
	}
}

func countLines(b []byte) int {
	n := 0
	for _, c := range b {
		if c == '\n' {
			n++
		}
	}
	return max(n, 1)
}

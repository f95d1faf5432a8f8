package supervisor

import (
	"bytes"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// goid is the calling goroutine's id, read from its stack trace's header.
func goid() uint64 {
	b := make([]byte, 64)
	b = b[:runtime.Stack(b, false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	id, _ := strconv.ParseUint(string(b[:bytes.IndexByte(b, ' ')]), 10, 64)
	return id
}

// idleWorkers waits until n workers wait for work.
func idleWorkers(t *testing.T, ws *workers, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ws.mu.Lock()
		k := len(ws.idle)
		ws.mu.Unlock()
		if k == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d workers wait for work, want %d", k, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestWorkersReuseAGoroutine: work that comes after earlier work ended
// runs on the goroutine that did it, not on a new one.
func TestWorkersReuseAGoroutine(t *testing.T) {
	s := New(hclog.NewNullLogger(), nil)
	ws := &s.workers
	ids := make(chan uint64, 1)
	var first uint64
	for i := range 5 {
		ws.do(func() { ids <- goid() })
		id := <-ids
		if i == 0 {
			first = id
		} else if id != first {
			t.Fatalf("task %d ran on goroutine %d, the first on %d", i, id, first)
		}
		idleWorkers(t, ws, 1)
	}
	ws.close()
	s.wg.Wait()
}

// TestWorkersEndWhenIdle: workers that waited idleWorkerTime end; busy
// ones at once take new ones' places.
func TestWorkersEndWhenIdle(t *testing.T) {
	defer func(d time.Duration) { idleWorkerTime = d }(idleWorkerTime)
	idleWorkerTime = 50 * time.Millisecond
	s := New(hclog.NewNullLogger(), nil)
	ws := &s.workers
	release := make(chan struct{})
	var started sync.WaitGroup
	for range 3 {
		started.Add(1)
		ws.do(func() {
			started.Done()
			<-release
		})
	}
	started.Wait() // three at once: three workers
	close(release)
	idleWorkers(t, ws, 3)
	idleWorkers(t, ws, 0) // reaped
	allEnded(t, s, "reaped workers did not end")
	ws.close()
}

// TestWorkersEndAtClose: close ends the waiting workers; work started
// after it still runs, and its worker ends with it.
func TestWorkersEndAtClose(t *testing.T) {
	s := New(hclog.NewNullLogger(), nil)
	ws := &s.workers
	done := make(chan struct{})
	ws.do(func() { close(done) })
	<-done
	idleWorkers(t, ws, 1)
	ws.close()
	ran := make(chan struct{})
	ws.do(func() { close(ran) })
	<-ran
	allEnded(t, s, "workers still run after close")
}

// allEnded waits for every goroutine s started to end.
func allEnded(t *testing.T, s *Supervisor, msg string) {
	t.Helper()
	ended := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(ended)
	}()
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal(msg)
	}
}

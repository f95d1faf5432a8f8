//go:build linux

package relay

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/testnet"
	"github.com/sluice-dev/sluice/pkg/chain"
)

// TestLoopSlowReader: a reader far slower than the writer makes the loop
// keep what the destination does not take, and wait for it to drain,
// without losing or reordering a byte; with splice off the loop holds
// messages in its buffers, with splice on in its pipes.
func TestLoopSlowReader(t *testing.T) {
	for _, splice := range []bool{false, true} {
		t.Run(map[bool]string{false: "copy", true: "splice"}[splice], func(t *testing.T) {
			defer loopSplice.Store(true)
			loopSplice.Store(splice)
			// A small receive buffer at the slow end (set before listen,
			// so that the window is small from the start) and a slow
			// reader fill the proxy's socket buffers soon.
			lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
				return rc.Control(func(fd uintptr) {
					_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 16<<10)
				})
			}}
			upLn, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = upLn.Close() })
			lp := startLoopPair(t, context.Background(), new(Stats), upLn, 0)

			payload := make([]byte, 8<<20)
			_, _ = rand.Read(payload)
			go func() {
				// Small writes: each is one message for the loop.
				for b := payload; len(b) > 0; {
					n := min(len(b), 1000)
					if _, err := lp.cl.Write(b[:n]); err != nil {
						return
					}
					b = b[n:]
				}
				_ = lp.cl.(*net.TCPConn).CloseWrite()
			}()
			sum := sha256.New()
			buf := make([]byte, 4<<10)
			var got int
			for {
				n, err := lp.up.Read(buf)
				sum.Write(buf[:n])
				got += n
				if got < 1<<20 {
					time.Sleep(time.Millisecond) // slow at first: the loop must hold
				}
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("upstream read after %d bytes: %v", got, err)
				}
			}
			if want := sha256.Sum256(payload); got != len(payload) || !bytes.Equal(sum.Sum(nil), want[:]) {
				t.Fatalf("upstream got %d bytes (hash match %v), want %d", got, bytes.Equal(sum.Sum(nil), want[:]), len(payload))
			}
			_ = lp.up.(*net.TCPConn).CloseWrite()
			if _, err := io.ReadAll(lp.cl); err != nil {
				t.Fatal(err)
			}
			if err := lp.wait(t); err != nil {
				t.Fatalf("Relay: %v", err)
			}
			if got := lp.c.BytesIn(); got != int64(len(payload)) {
				t.Errorf("BytesIn = %d, want %d", got, len(payload))
			}
			if !splice && lp.st.Held.Load() == 0 {
				t.Error("the loop never had to hold a message: the slow reader did not slow it")
			}
			if s := lp.st.Splice.Load(); splice != (s > 0) {
				t.Errorf("splice switches = %d with splice %v", s, splice)
			}
		})
	}
}

// TestLoopHalfClose: either side may finish sending first; the other
// keeps sending, and its bytes still arrive, until it finishes too.
func TestLoopHalfClose(t *testing.T) {
	for _, upFirst := range []bool{false, true} {
		t.Run(map[bool]string{false: "client first", true: "upstream first"}[upFirst], func(t *testing.T) {
			lp := newLoopPair(t, context.Background(), 0)
			first, second := lp.cl, lp.up
			if upFirst {
				first, second = lp.up, lp.cl
			}
			if _, err := first.Write([]byte("ping")); err != nil {
				t.Fatal(err)
			}
			_ = first.(*net.TCPConn).CloseWrite()
			b, err := io.ReadAll(second)
			if err != nil || string(b) != "ping" {
				t.Fatalf("read %q, %v; want ping then EOF", b, err)
			}
			// The half-closed side still reads what the other sends.
			for range 3 {
				if _, err := second.Write([]byte("pong")); err != nil {
					t.Fatal(err)
				}
			}
			_ = second.(*net.TCPConn).CloseWrite()
			b, err = io.ReadAll(first)
			if err != nil || string(b) != "pongpongpong" {
				t.Fatalf("read %q, %v; want pong×3 then EOF", b, err)
			}
			if err := lp.wait(t); err != nil {
				t.Fatalf("Relay: %v", err)
			}
			if in, out := lp.c.BytesIn(), lp.c.BytesOut(); (upFirst && (in != 12 || out != 4)) || (!upFirst && (in != 4 || out != 12)) {
				t.Errorf("counted in/out %d/%d", in, out)
			}
		})
	}
}

// TestLoopForceClose: cancelling the generation's context ends a pair the
// loop holds at once, both sockets closed, with an error that says the
// connection was closed rather than blaming a peer.
func TestLoopForceClose(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	lp := newLoopPair(t, ctx, 0)
	if _, err := lp.cl.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(lp.up, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	cancel()
	err := lp.wait(t)
	if !errors.Is(err, net.ErrClosed) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Relay = %v, want net.ErrClosed and context.Canceled", err)
	}
	for name, c := range map[string]net.Conn{"client": lp.cl, "upstream": lp.up} {
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Errorf("%s: read succeeded after the force-close", name)
		}
	}
}

// TestLoopIdleTimeout: the idle timeout ends a quiet pair on the loop.
func TestLoopIdleTimeout(t *testing.T) {
	lp := newLoopPair(t, context.Background(), 200*time.Millisecond)
	if err := lp.wait(t); !errors.Is(err, chain.ErrIdleTimeout) {
		t.Fatalf("Relay = %v, want the idle timeout", err)
	}
	if _, err := lp.cl.Read(make([]byte, 1)); err == nil {
		t.Error("client: read succeeded after the idle timeout")
	}
}

// TestLoopFDs: pairs on the loop, however they end, leave no descriptor
// behind, and an idle loop holds none (its goroutine gone too, which
// goleak checks at the end). It compares the set of descriptors, not
// their count: another test's descriptor closing meanwhile must neither
// hide a leak nor fake one.
func TestLoopFDs(t *testing.T) {
	upLn := testnet.Listen(t, "tcp")
	before := listFDs(t)
	ctx, cancel := context.WithCancel(context.Background())
	var pairs []*loopPair
	for i := range 30 {
		lp := startLoopPair(t, ctx, new(Stats), upLn, 0)
		if _, err := lp.cl.Write([]byte("hello")); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(lp.up, make([]byte, 5)); err != nil {
			t.Fatal(err)
		}
		switch i % 3 {
		case 0: // both sides finish
			_ = lp.cl.(*net.TCPConn).CloseWrite()
			_ = lp.up.(*net.TCPConn).CloseWrite()
		case 1: // the client resets
			_ = lp.cl.(*net.TCPConn).SetLinger(0)
			_ = lp.cl.Close()
		case 2: // left open: force-closed below
		}
		pairs = append(pairs, lp)
	}
	cancel()
	for _, lp := range pairs {
		_ = lp.wait(t)
		_ = lp.cl.Close()
		_ = lp.up.Close()
		_ = lp.front.Close()
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		leaked := newFDs(before, listFDs(t))
		if len(leaked) == 0 && loopsIdle() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("descriptors opened and still open: %v; loops idle: %v", leaked, loopsIdle())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func loopsIdle() bool {
	for i := range loops.loops {
		l := &loops.loops[i]
		l.mu.Lock()
		running := l.run != nil
		l.mu.Unlock()
		if running {
			return false
		}
	}
	return true
}

// listFDs lists the open descriptors but pipes: pooled pipes, freed by
// the garbage collector, come and go with other tests' bulk transfers.
func listFDs(t *testing.T) map[string]string {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	fds := make(map[string]string)
	for _, e := range ents {
		target, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err != nil || strings.HasPrefix(target, "pipe:") {
			continue // gone already, or a pipe
		}
		fds[e.Name()] = target
	}
	return fds
}

// newFDs lists the descriptors of after that were not open, as the same
// file, in before.
func newFDs(before, after map[string]string) []string {
	var fds []string
	for fd, target := range after {
		if before[fd] != target {
			fds = append(fds, fd+"→"+target)
		}
	}
	return fds
}

// TestLoopPanicEndsItsRelaysOnly: a bug that panics inside the event loop
// closes the connections the loop held and is logged; the process lives
// on, and the next connection gets a fresh loop.
func TestLoopPanicEndsItsRelaysOnly(t *testing.T) {
	upLn := testnet.Listen(t, "tcp")
	const victim = 4242
	var once atomic.Bool
	hook := func(e *evloop) {
		// Only the loop that holds this test's pair.
		for _, r := range e.slots {
			if r != nil && r.p.c.ID() == victim && once.CompareAndSwap(false, true) {
				panic("injected")
			}
		}
	}
	testHookTurn.Store(&hook)
	t.Cleanup(func() { testHookTurn.Store(nil) })

	lp := startPair(t, context.Background(), new(Stats), upLn, 0, victim, nil)
	if err := lp.wait(t); err == nil || !strings.Contains(err.Error(), "panicked") {
		t.Fatalf("relay ended with %v, want the loop's panic", err)
	}

	// A fresh pair on the same handler is served by a new loop.
	next := startLoopPair(t, context.Background(), new(Stats), upLn, 0)
	if _, err := next.cl.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 4)
	if _, err := io.ReadFull(next.up, got); err != nil || string(got) != "ping" {
		t.Fatalf("after the panic, a new pair: %q, %v", got, err)
	}
}

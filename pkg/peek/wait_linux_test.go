package peek_test

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/strace"
	"github.com/sluice-dev/sluice/internal/testnet"
	"github.com/sluice-dev/sluice/pkg/peek"
)

// waitChildEnv makes TestWaitChild run: it is the process that
// TestReadWaitsAfterOneEmptyReceive traces.
const waitChildEnv = "SLUICE_PEEK_WAIT_CHILD"

// waitPeeks is how many connections the child reads from, each of whose
// bytes come only after its first look.
const waitPeeks = 10

// TestReadWaitsAfterOneEmptyReceive checks, under strace, that a look at a
// socket whose bytes are not there yet costs one receive that finds nothing, then a wait in the poller: not a
// second empty receive on the way to it (two per connection before the
// deadline was armed within the call).
func TestReadWaitsAfterOneEmptyReceive(t *testing.T) {
	trace := strace.Run(t, "recvfrom", "TestWaitChild", waitChildEnv+"=1")
	empty := map[int]int{} // by descriptor: one per connection
	for _, c := range strace.Calls(trace, "recvfrom") {
		if strings.Contains(c.Result, "EAGAIN") {
			empty[c.FD]++
		}
	}
	t.Logf("empty receives by connection: %v", empty)
	// Nearly every connection's bytes come after its first look; a slow
	// machine may let a few arrive before it.
	if len(empty) < waitPeeks {
		t.Fatalf("only %d of %d connections waited for their bytes\n%s", len(empty), 2*waitPeeks, trace)
	}
	for fd, n := range empty {
		if n != 1 {
			t.Errorf("descriptor %d: %d empty receives in one wait, want 1\n%s", fd, n, trace)
		}
	}
}

// TestWaitChild is the traced process of TestReadWaitsAfterOneEmptyReceive.
func TestWaitChild(t *testing.T) {
	if os.Getenv(waitChildEnv) == "" {
		t.Skip("run by TestReadWaitsAfterOneEmptyReceive")
	}
	for i := 0; i < 2*waitPeeks; i++ {
		client, server := testnet.TCPPair(t)
		go func() {
			time.Sleep(100 * time.Millisecond)
			_, _ = client.Write([]byte("hello\n"))
		}()
		calls := 0
		seen, err := peek.Read(server, make([]byte, 64), time.Now().Add(10*time.Second), untilNewline(&calls))
		if err != nil || string(seen) != "hello\n" {
			t.Fatalf("look %d: %q, %v", i, seen, err)
		}
	}
}

// TestReadQuietUntilDeadline: a socket that stays quiet is waited on
// until the deadline, and a deadline already past ends the wait at once.
func TestReadQuietUntilDeadline(t *testing.T) {
	client, server := testnet.TCPPair(t)
	calls := 0
	start := time.Now()
	seen, err := peek.Read(server, make([]byte, 64), start.Add(150*time.Millisecond), untilNewline(&calls))
	if !errors.Is(err, os.ErrDeadlineExceeded) || len(seen) != 0 || calls != 0 {
		t.Fatalf("seen %q, err %v, %d looks", seen, err, calls)
	}
	if d := time.Since(start); d < 120*time.Millisecond {
		t.Errorf("returned after %v, before the deadline", d)
	}
	start = time.Now()
	_, err = peek.Read(server, make([]byte, 64), start.Add(-time.Second), untilNewline(&calls))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("past deadline: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("a past deadline took %v", d)
	}
	// The deadline is cleared after the wait: the next reader's read
	// waits for bytes rather than failing at once.
	go func() {
		time.Sleep(20 * time.Millisecond)
		_, _ = client.Write([]byte("x"))
	}()
	b := make([]byte, 1)
	if n, err := server.Read(b); err != nil || n != 1 {
		t.Fatalf("read after the wait: %d, %v", n, err)
	}
}

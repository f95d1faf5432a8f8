package peek_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sluice-dev/sluice/internal/testnet"
	"github.com/sluice-dev/sluice/pkg/peek"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// untilNewline is done at the first '\n', and asks for twice the bytes
// seen when it needs more.
func untilNewline(calls *int) peek.Look {
	return func(b []byte) (bool, int) {
		*calls++
		return bytes.IndexByte(b, '\n') >= 0, 2 * len(b)
	}
}

func TestSocketWaitsForNewBytesAndLeavesThem(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no MSG_PEEK")
	}
	client, server := testnet.TCPPair(t)
	go func() {
		for _, part := range []string{"he", "llo wor", "ld\nafter"} {
			_, _ = client.Write([]byte(part))
			time.Sleep(20 * time.Millisecond)
		}
	}()
	calls := 0
	seen, ok, err := peek.Socket(server, make([]byte, 4), time.Now().Add(10*time.Second), untilNewline(&calls))
	if !ok || err != nil || !bytes.HasPrefix(seen, []byte("hello world\n")) {
		t.Fatalf("seen %q, ok %v, err %v", seen, ok, err)
	}
	// A wait for each new segment, not a spin.
	if calls > 6 {
		t.Errorf("look called %d times for 3 segments", calls)
	}
	// The bytes are still in the socket, for the next reader.
	_ = server.SetReadDeadline(time.Now().Add(10 * time.Second))
	got := make([]byte, len("hello world\nafter"))
	if _, err := io.ReadFull(server, got); err != nil || string(got) != "hello world\nafter" {
		t.Fatalf("read after the peek: %q, %v", got, err)
	}
}

func TestSocketDeadlineAndEOF(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no MSG_PEEK")
	}
	client, server := testnet.TCPPair(t)
	_, _ = client.Write([]byte("no newline"))
	calls := 0
	start := time.Now()
	seen, ok, err := peek.Socket(server, make([]byte, 64), time.Now().Add(200*time.Millisecond), untilNewline(&calls))
	if !ok || !errors.Is(err, os.ErrDeadlineExceeded) || string(seen) != "no newline" {
		t.Fatalf("seen %q, ok %v, err %v", seen, ok, err)
	}
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Errorf("returned after %v, before the deadline", d)
	}
	_ = client.CloseWrite()
	seen, _, err = peek.Socket(server, make([]byte, 64), time.Now().Add(10*time.Second), untilNewline(&calls))
	if !errors.Is(err, io.EOF) || string(seen) != "no newline" {
		t.Fatalf("after EOF: seen %q, err %v", seen, err)
	}
}

func TestSocketFullBuffer(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no MSG_PEEK")
	}
	client, server := testnet.TCPPair(t)
	_, _ = client.Write([]byte("0123456789"))
	seen, _, err := peek.Socket(server, make([]byte, 4), time.Now().Add(10*time.Second), func([]byte) (bool, int) { return false, 0 })
	if err != nil || string(seen) != "0123" {
		t.Fatalf("seen %q, err %v", seen, err)
	}
}

func TestReadAndReplay(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	if _, ok, _ := peek.Socket(b, make([]byte, 8), time.Now().Add(time.Second), nil); ok {
		t.Fatal("a pipe is no socket")
	}
	go func() {
		_, _ = a.Write([]byte("first "))
		_, _ = a.Write([]byte("line\nrest"))
		_ = a.Close()
	}()
	calls := 0
	seen, err := peek.Read(b, make([]byte, 4), time.Now().Add(10*time.Second), untilNewline(&calls))
	if err != nil || !bytes.HasPrefix(seen, []byte("first line\n")) {
		t.Fatalf("seen %q, err %v", seen, err)
	}
	all, _ := io.ReadAll(peek.NewReplay(b, seen))
	if string(all) != "first line\nrest" {
		t.Fatalf("replayed %q", all)
	}
}

// TestReadSocketTakesTheBytes: on a socket Read takes the bytes out as it
// looks (the next reader of the socket gets what follows them), waits for
// more until its look is done, and ends at the deadline and at EOF with
// what it took, the deadline cleared behind it.
func TestReadSocketTakesTheBytes(t *testing.T) {
	client, server := testnet.TCPPair(t)
	go func() {
		_, _ = client.Write([]byte("first "))
		time.Sleep(50 * time.Millisecond)
		_, _ = client.Write([]byte("line\n"))
	}()
	calls := 0
	seen, err := peek.Read(server, make([]byte, 4), time.Now().Add(10*time.Second), untilNewline(&calls))
	if err != nil || string(seen) != "first line\n" {
		t.Fatalf("seen %q, err %v", seen, err)
	}
	if calls < 2 {
		t.Errorf("%d looks, want one as the first bytes came and one at the newline", calls)
	}
	_, _ = client.Write([]byte("rest"))
	start := time.Now()
	seen, err = peek.Read(server, make([]byte, 64), start.Add(150*time.Millisecond), untilNewline(&calls))
	if !errors.Is(err, os.ErrDeadlineExceeded) || string(seen) != "rest" {
		t.Fatalf("at the deadline: seen %q, err %v", seen, err)
	}
	if d := time.Since(start); d < 120*time.Millisecond {
		t.Errorf("returned after %v, before the deadline", d)
	}
	_, _ = client.Write([]byte("end"))
	_ = client.CloseWrite()
	seen, err = peek.Read(server, make([]byte, 64), time.Now().Add(10*time.Second), untilNewline(&calls))
	if !errors.Is(err, io.EOF) || string(seen) != "end" {
		t.Fatalf("at EOF: seen %q, err %v", seen, err)
	}
	// The deadline was cleared: a read now waits rather than failing.
	go func() {
		time.Sleep(20 * time.Millisecond)
		_ = client.Close()
	}()
	if n, err := server.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("read after the looks: %d, %v", n, err)
	}
}

// TestReplayPendingDiscard: what a terminal handler uses to send the
// replayed bytes on itself, then to take the connection under them.
func TestReplayPendingDiscard(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	r := peek.NewReplay(b, []byte("abcdef"))
	if r.Buffered() != 6 || string(r.Pending()) != "abcdef" {
		t.Fatalf("buffered %d, pending %q", r.Buffered(), r.Pending())
	}
	r.Discard(4)
	if string(r.Pending()) != "ef" {
		t.Fatalf("after Discard(4): %q", r.Pending())
	}
	r.Discard(10)
	if r.Buffered() != 0 || r.Unwrap() != b {
		t.Fatalf("after Discard(10): buffered %d", r.Buffered())
	}
}

// TestReplayRelease: a pooled buffer is given back once, when its last
// byte is read or discarded, and not before.
func TestReplayRelease(t *testing.T) {
	for _, take := range []string{"read", "discard"} {
		a, b := net.Pipe()
		released := 0
		r := peek.NewReplayRelease(b, []byte("abcdef"), func() { released++ })
		p := make([]byte, 4)
		for i, n := range []int{4, 2} {
			if released != 0 {
				t.Fatalf("%s: released after %d of 6 bytes", take, i*4)
			}
			if take == "read" {
				if got, err := r.Read(p[:n]); got != n || err != nil {
					t.Fatalf("read %d, %v", got, err)
				}
			} else {
				r.Discard(n)
			}
		}
		if released != 1 || r.Buffered() != 0 {
			t.Fatalf("%s: released %d times, %d bytes left; want once, none", take, released, r.Buffered())
		}
		r.Discard(1)
		go func() { _, _ = a.Write([]byte("g")) }()
		if got, err := r.Read(p); got != 1 || err != nil || p[0] != 'g' || released != 1 {
			t.Fatalf("%s: then read %q, %v, released %d; want the connection's byte, no second release", take, p[:got], err, released)
		}
		_ = a.Close()
		_ = b.Close()
	}
}

func TestReplayForwardsCloseWrite(t *testing.T) {
	client, server := testnet.TCPPair(t)
	r := peek.NewReplay(server, []byte("x"))
	if err := r.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	_ = client.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := client.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("client read %d, %v; want EOF from the forwarded half-close", n, err)
	}
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if err := peek.NewReplay(a, nil).CloseWrite(); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("CloseWrite on a pipe: %v", err)
	}
}

// dribble writes msg to c a byte a time, each its own segment, then
// closes c's write side.
func dribble(c *net.TCPConn, msg string) {
	for i := range len(msg) {
		if _, err := c.Write([]byte{msg[i]}); err != nil {
			return
		}
		time.Sleep(200 * time.Microsecond)
	}
	_ = c.CloseWrite()
}

// A client that sends its first bytes one segment at a time gets a
// bounded number of looks, each a parse of everything seen so far, not
// one per segment; the look that decides still sees every byte.
func TestLooksPacedForDribbledBytes(t *testing.T) {
	msg := string(bytes.Repeat([]byte("x"), 600)) + "\n"
	for _, tc := range []struct {
		name string
		run  func(server *net.TCPConn, look peek.Look) ([]byte, error)
	}{
		{"socket", func(server *net.TCPConn, look peek.Look) ([]byte, error) {
			seen, _, err := peek.Socket(server, make([]byte, 1024), time.Now().Add(10*time.Second), look)
			return seen, err
		}},
		{"read", func(server *net.TCPConn, look peek.Look) ([]byte, error) {
			return peek.Read(server, make([]byte, 1024), time.Now().Add(10*time.Second), look)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "socket" && runtime.GOOS == "windows" {
				t.Skip("no MSG_PEEK")
			}
			client, server := testnet.TCPPair(t)
			go dribble(client, msg)
			calls := 0
			seen, err := tc.run(server, func(b []byte) (bool, int) {
				calls++
				return bytes.IndexByte(b, '\n') >= 0, 0
			})
			if err != nil || !bytes.HasSuffix(seen, []byte("\n")) || len(seen) != len(msg) {
				t.Fatalf("seen %d bytes ending %q, err %v; want all %d", len(seen), seen[max(0, len(seen)-3):], err, len(msg))
			}
			// 32 as they come, then one per doubling (to 1024), and the
			// one at the end: well under one per segment (601).
			if calls > 32+6+1 {
				t.Errorf("%d looks for %d segments", calls, len(msg))
			}
		})
	}
}

// TestSocketAllocations: a look at bytes already waiting costs the
// peeker's own state and nothing per system call (no room for a sender's
// address, which a connected socket has none of).
func TestSocketAllocations(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the allocation-free recvfrom is Linux's")
	}
	client, server := testnet.TCPPair(t)
	if _, err := client.Write([]byte("hello\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	deadline := time.Now().Add(10 * time.Second)
	look := func(b []byte) (bool, int) { return bytes.IndexByte(b, '\n') >= 0, 0 }
	if seen, _, err := peek.Socket(server, buf, deadline, look); err != nil || string(seen) != "hello\n" {
		t.Fatalf("peek: %q, %v", seen, err)
	}
	n := testing.AllocsPerRun(100, func() { _, _, _ = peek.Socket(server, buf, deadline, look) })
	if n > 4 {
		t.Errorf("%.0f allocations per look at waiting bytes, want at most 4", n)
	}
	t.Logf("%.0f allocations per look", n)
}

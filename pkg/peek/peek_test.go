package peek_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
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

// TestReadFullBuffer: a look that never says done ends with a full
// buffer, what followed left in the socket.
func TestReadFullBuffer(t *testing.T) {
	client, server := testnet.TCPPair(t)
	_, _ = client.Write([]byte("0123456789"))
	seen, err := peek.Read(server, make([]byte, 4), time.Now().Add(10*time.Second), func([]byte) (bool, int) { return false, 0 })
	if err != nil || string(seen) != "0123" {
		t.Fatalf("seen %q, err %v", seen, err)
	}
}

func TestReadAndReplay(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
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
// byte is read or discarded, and not before; at once when there is
// nothing to replay, or when the bytes lie in a buffer Read grew.
func TestReplayRelease(t *testing.T) {
	for _, tc := range []struct {
		name       string
		rest, read func(bp *[]byte) []byte
	}{
		{"nothing to replay", func(*[]byte) []byte { return nil }, func(bp *[]byte) []byte { return (*bp)[:3] }},
		{"outgrown", func(*[]byte) []byte { return []byte("abcdef") }, func(*[]byte) []byte { return []byte("abcdef") }},
	} {
		a, b := net.Pipe()
		bp := &[]byte{'x', 'y', 'z', 0, 0, 0}
		var put []any
		c := peek.ReplayPooled(b, tc.read(bp), tc.rest(bp), bp, func(v any) { put = append(put, v) })
		if len(put) != 1 || put[0] != any(bp) {
			t.Fatalf("%s: buffer given back %d times, want once at once", tc.name, len(put))
		}
		if r, ok := c.(*peek.Replay); ok != (tc.name == "outgrown") || ok && string(r.Pending()) != "abcdef" {
			t.Fatalf("%s: got %T", tc.name, c)
		}
		_ = a.Close()
		_ = b.Close()
	}
	for _, take := range []string{"read", "discard"} {
		a, b := net.Pipe()
		released := 0
		bp := &[]byte{'a', 'b', 'c', 'd', 'e', 'f'}
		r := peek.ReplayPooled(b, *bp, *bp, bp, func(v any) {
			if v != any(bp) {
				t.Errorf("gave back %v, not the pooled buffer", v)
			}
			released++
		}).(*peek.Replay)
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
	client, server := testnet.TCPPair(t)
	go dribble(client, msg)
	calls := 0
	seen, err := peek.Read(server, make([]byte, 1024), time.Now().Add(10*time.Second), func(b []byte) (bool, int) {
		calls++
		return bytes.IndexByte(b, '\n') >= 0, 0
	})
	if err != nil || !bytes.HasSuffix(seen, []byte("\n")) || len(seen) != len(msg) {
		t.Fatalf("seen %d bytes ending %q, err %v; want all %d", len(seen), seen[max(0, len(seen)-3):], err, len(msg))
	}
	// 32 as they come, then one per doubling (to 1024), and the one at
	// the end: well under one per segment (601).
	if calls > 32+6+1 {
		t.Errorf("%d looks for %d segments", calls, len(msg))
	}
}

//go:build linux

package relay

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net"
	"sync"
	"testing"

	"github.com/sluice-dev/sluice/internal/testnet"
)

// TestHopPingPong: a pair that keeps exchanging messages moves to the
// loop after hopAfter of them, and the messages before, during and after
// the move arrive in order, counted to the byte; a half-close after the
// move still passes on.
func TestHopPingPong(t *testing.T) {
	setHopAfter(t, 4)
	st := new(Stats)
	lp := startPair(t, context.Background(), st, testnet.Listen(t, "tcp"), 0, 1, nil)
	in, out := pingPong(t, lp, 20)
	halfCloseBoth(t, lp)
	if st.Hops.Load() != 1 {
		t.Errorf("hops %d, want 1", st.Hops.Load())
	}
	if lp.c.BytesIn() != in || lp.c.BytesOut() != out {
		t.Errorf("counted in/out %d/%d, want %d/%d", lp.c.BytesIn(), lp.c.BytesOut(), in, out)
	}
}

// TestHopBothWaysAtOnce: both sides stream small messages at the same
// time, so that the move finds one direction waiting and the other in
// the middle of its work; not a byte is lost, doubled or reordered.
func TestHopBothWaysAtOnce(t *testing.T) {
	// Streams this fast soon look like bulk data, which splices and
	// never hops: the goroutines copy it as messages here.
	directSplice.Store(false)
	defer directSplice.Store(true)
	for _, after := range []int64{1, 5, 40} {
		setHopAfter(t, after)
		st := new(Stats)
		lp := startPair(t, context.Background(), st, testnet.Listen(t, "tcp"), 0, 1, nil)
		toUp, toClient := make([]byte, 2<<20), make([]byte, 3<<20)
		_, _ = rand.Read(toUp)
		_, _ = rand.Read(toClient)
		send := func(c net.Conn, b []byte) {
			for len(b) > 0 {
				n := min(len(b), 97)
				if _, err := c.Write(b[:n]); err != nil {
					return
				}
				b = b[n:]
			}
			_ = c.(*net.TCPConn).CloseWrite()
		}
		var wg sync.WaitGroup
		var gotUp, gotClient []byte
		var errUp, errClient error
		wg.Add(4)
		go func() { defer wg.Done(); send(lp.cl, toUp) }()
		go func() { defer wg.Done(); send(lp.up, toClient) }()
		go func() { defer wg.Done(); gotUp, errUp = io.ReadAll(lp.up) }()
		go func() { defer wg.Done(); gotClient, errClient = io.ReadAll(lp.cl) }()
		wg.Wait()
		if errUp != nil || !bytes.Equal(gotUp, toUp) {
			t.Fatalf("after %d: upstream got %d bytes (%v), want %d intact", after, len(gotUp), errUp, len(toUp))
		}
		if errClient != nil || !bytes.Equal(gotClient, toClient) {
			t.Fatalf("after %d: client got %d bytes (%v), want %d intact", after, len(gotClient), errClient, len(toClient))
		}
		if err := lp.wait(t); err != nil {
			t.Fatalf("after %d: Relay: %v", after, err)
		}
		if lp.c.BytesIn() != int64(len(toUp)) || lp.c.BytesOut() != int64(len(toClient)) {
			t.Errorf("after %d: counted in/out %d/%d, want %d/%d", after, lp.c.BytesIn(), lp.c.BytesOut(), len(toUp), len(toClient))
		}
		if st.Hops.Load() != 1 {
			t.Errorf("after %d: hops %d, want 1", after, st.Hops.Load())
		}
	}
}

// TestHopNotAfterHalfClose: a pair one side of which already ended stays
// on its goroutines, and the other side's messages keep flowing.
func TestHopNotAfterHalfClose(t *testing.T) {
	setHopAfter(t, 2)
	st := new(Stats)
	lp := startPair(t, context.Background(), st, testnet.Listen(t, "tcp"), 0, 1, nil)
	if _, err := lp.cl.Write([]byte("request")); err != nil {
		t.Fatal(err)
	}
	_ = lp.cl.(*net.TCPConn).CloseWrite()
	if b, err := io.ReadAll(lp.up); err != nil || string(b) != "request" {
		t.Fatalf("upstream read %q, %v; want the request then EOF", b, err)
	}
	var want []byte
	for i := range 10 {
		msg := []byte{'r', byte('0' + i)}
		want = append(want, msg...)
		if _, err := lp.up.Write(msg); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 2)
		if _, err := io.ReadFull(lp.cl, got); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("client read %q, %v; want %q", got, err, msg)
		}
	}
	_ = lp.up.(*net.TCPConn).CloseWrite()
	if b, err := io.ReadAll(lp.cl); err != nil || len(b) != 0 {
		t.Fatalf("client after the upstream's half-close: %q, %v; want EOF", b, err)
	}
	if err := lp.wait(t); err != nil {
		t.Fatalf("Relay: %v", err)
	}
	if st.Hops.Load() != 0 {
		t.Errorf("hops %d, want 0 for a half-closed pair", st.Hops.Load())
	}
	if lp.c.BytesOut() != int64(len(want)) {
		t.Errorf("counted out %d, want %d", lp.c.BytesOut(), len(want))
	}
}

// TestHopNoLoopLeft: when no loop can take the pair, its goroutines go
// on where they stopped.
func TestHopNoLoopLeft(t *testing.T) {
	setHopAfter(t, 2)
	st := new(Stats)
	lp := startPair(t, context.Background(), st, testnet.Listen(t, "tcp"), 0, 1, nil)
	// The loop is refused by turning it off once the pair runs: Relay
	// asked loopable at its start, loopRelay asks again at the hop.
	setNoLoop(t, true)
	for i := range 10 {
		msg := []byte{'m', byte('0' + i)}
		if _, err := lp.cl.Write(msg); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 2)
		if _, err := io.ReadFull(lp.up, got); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("message %d: upstream read %q, %v", i, got, err)
		}
		if _, err := lp.up.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(lp.cl, got); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("reply %d: client read %q, %v", i, got, err)
		}
	}
	_ = lp.cl.(*net.TCPConn).CloseWrite()
	_ = lp.up.(*net.TCPConn).CloseWrite()
	if err := lp.wait(t); err != nil {
		t.Fatalf("Relay: %v", err)
	}
	if st.Hops.Load() != 0 {
		t.Errorf("hops %d, want 0 with the loop refused", st.Hops.Load())
	}
}

// pingPong exchanges n messages and their replies between lp's client
// and upstream, each checked as it arrives, and returns the bytes each
// way.
func pingPong(t *testing.T, lp *loopPair, n int) (in, out int64) {
	t.Helper()
	for i := range n {
		msg := []byte{byte('a' + i), byte(i)}
		if _, err := lp.cl.Write(msg); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(lp.up, got); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("message %d: upstream read %q, %v; want %q", i, got, err, msg)
		}
		reply := append(msg, '!')
		if _, err := lp.up.Write(reply); err != nil {
			t.Fatal(err)
		}
		got = make([]byte, len(reply))
		if _, err := io.ReadFull(lp.cl, got); err != nil || !bytes.Equal(got, reply) {
			t.Fatalf("reply %d: client read %q, %v; want %q", i, got, err, reply)
		}
		in, out = in+int64(len(msg)), out+int64(len(reply))
	}
	return in, out
}

// halfCloseBoth half-closes the client, checks that the upstream sees
// its EOF, half-closes the upstream, and waits for Relay to end well.
func halfCloseBoth(t *testing.T, lp *loopPair) {
	t.Helper()
	_ = lp.cl.(*net.TCPConn).CloseWrite()
	if b, err := io.ReadAll(lp.up); err != nil || len(b) != 0 {
		t.Fatalf("upstream after the client's half-close: %q, %v; want EOF", b, err)
	}
	_ = lp.up.(*net.TCPConn).CloseWrite()
	if err := lp.wait(t); err != nil {
		t.Fatalf("Relay: %v", err)
	}
}

//go:build linux

package relay

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/sluice-dev/sluice/internal/testnet"
	"github.com/sluice-dev/sluice/pkg/chain"
	"github.com/sluice-dev/sluice/pkg/peek"
)

// replayed wraps a client's socket as proxy_protocol and then route leave
// it: the bytes each read to decide, outer first, then the socket.
func replayed(outer, inner string) func(net.Conn) net.Conn {
	return func(raw net.Conn) net.Conn {
		return peek.NewReplay(peek.NewReplay(raw, []byte(inner)), []byte(outer))
	}
}

// TestRelaySendsReplayedFirst: the bytes handlers replay reach the
// upstream first, outer Replay before inner, counted as the client's; the
// relay then works on the bare socket: no direction takes the buffered
// path, and the pair moves to the event loop, which takes only sockets.
func TestRelaySendsReplayedFirst(t *testing.T) {
	setHopAfter(t, 4)
	st := new(Stats)
	lp := startPair(t, context.Background(), st, testnet.Listen(t, "tcp"), 0, 1, replayed("outer,", "inner,"))
	first := make([]byte, len("outer,inner,"))
	if _, err := io.ReadFull(lp.up, first); err != nil || string(first) != "outer,inner," {
		t.Fatalf("upstream read %q first, %v; want the replayed bytes", first, err)
	}
	in, out := pingPong(t, lp, 20)
	in += int64(len(first))
	halfCloseBoth(t, lp)
	if st.Buffered.Load() != 0 || st.Hops.Load() != 1 {
		t.Errorf("buffered %d, hops %d; want 0 and 1: the relay got the bare socket", st.Buffered.Load(), st.Hops.Load())
	}
	if lp.c.BytesIn() != in || lp.c.BytesOut() != out {
		t.Errorf("counted in/out %d/%d, want %d/%d", lp.c.BytesIn(), lp.c.BytesOut(), in, out)
	}
}

// TestRelayReplayTheSocketCannotTake: replayed bytes that an upstream
// which is not reading cannot take at once stay in the Replay and are
// copied through a buffer, in order, before what the client sends next.
func TestRelayReplayTheSocketCannotTake(t *testing.T) {
	big := make([]byte, 32<<20)
	_, _ = rand.Read(big)
	st := new(Stats)
	lp := startPair(t, context.Background(), st, testnet.Listen(t, "tcp"), time.Minute, 1, func(raw net.Conn) net.Conn {
		return peek.NewReplay(raw, big)
	})
	time.Sleep(100 * time.Millisecond) // the socket buffers fill
	go func() {
		_, _ = lp.cl.Write([]byte("after"))
		_ = lp.cl.(*net.TCPConn).CloseWrite()
	}()
	got, err := io.ReadAll(lp.up)
	if err != nil || len(got) != len(big)+5 || !bytes.Equal(got[:len(big)], big) || string(got[len(big):]) != "after" {
		t.Fatalf("upstream read %d bytes (%v), want the %d replayed, then \"after\", then EOF", len(got), err, len(big))
	}
	_ = lp.up.Close()
	if err := lp.wait(t); err != nil {
		t.Fatalf("Relay: %v", err)
	}
	if st.Buffered.Load() == 0 {
		t.Error("no direction took the buffered path: the replay was not left to it")
	}
	if lp.c.BytesIn() != int64(len(got)) {
		t.Errorf("counted in %d, want %d", lp.c.BytesIn(), len(got))
	}
}

// TestCopyEchoesReplayedFirst: echo sends the replayed bytes back first,
// then echoes on the bare socket.
func TestCopyEchoesReplayedFirst(t *testing.T) {
	cl, server := testnet.TCPPair(t)
	_ = cl.SetDeadline(time.Now().Add(30 * time.Second))
	st := new(Stats)
	c := chain.NewConn(server, 1, "t", time.Minute, hclog.NewNullLogger())
	c.Conn = replayed("outer,", "inner,")(server)
	done := make(chan error, 1)
	go func() { done <- Copy(c, c.Conn, c.Conn, In|Out, st) }()
	if _, err := cl.Write([]byte("mine")); err != nil {
		t.Fatal(err)
	}
	_ = cl.CloseWrite()
	got, err := io.ReadAll(cl)
	if err != nil || string(got) != "outer,inner,mine" {
		t.Fatalf("echoed %q, %v", got, err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Copy: %v", err)
	}
	if st.Buffered.Load() != 0 {
		t.Error("the echo took the buffered path: it did not get the bare socket")
	}
	if n := int64(len(got)); c.BytesIn() != n || c.BytesOut() != n {
		t.Errorf("counted in/out %d/%d, want %d/%d", c.BytesIn(), c.BytesOut(), n, n)
	}
}

// TestTakeWaiting: the replayed bytes come first, a Replay emptied is
// taken off c.Conn, and then what waits in the socket, without waiting.
func TestTakeWaiting(t *testing.T) {
	client, server := testnet.TCPPair(t)
	c := chain.NewConn(server, 1, "t", time.Minute, hclog.NewNullLogger())
	c.Conn = replayed("outer,", "inner,")(server)
	p := make([]byte, 8)
	n, err := TakeWaiting(c, p)
	if err != nil || string(p[:n]) != "outer,in" {
		t.Fatalf("took %q, %v", p[:n], err)
	}
	if _, ok := c.Conn.(*peek.Replay); !ok {
		t.Fatal("a Replay with bytes left was taken off")
	}
	n, err = TakeWaiting(c, p)
	if err != nil || string(p[:n]) != "ner," || c.Conn != server {
		t.Fatalf("took %q, %v; bare socket %v", p[:n], err, c.Conn == server)
	}
	if n, err = TakeWaiting(c, p); n != 0 || err != nil {
		t.Fatalf("empty socket: took %d, %v; want 0 without waiting", n, err)
	}
	_, _ = client.Write([]byte("waiting"))
	deadline := time.Now().Add(10 * time.Second)
	for n == 0 && err == nil && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
		n, err = TakeWaiting(c, p)
	}
	if err != nil || string(p[:n]) != "waiting" {
		t.Fatalf("took %q, %v", p[:n], err)
	}
}

// TestWriteNow: a socket with room takes it all at once; a full one
// takes what it has room for, then nothing, without waiting; a wrapper
// is never written around its own Write.
func TestWriteNow(t *testing.T) {
	client, server := testnet.TCPPair(t)
	if n, err := WriteNow(server, nil); n != 0 || err != nil {
		t.Fatalf("WriteNow of nothing = %d, %v; want 0, nil", n, err)
	}
	if n, err := WriteNow(server, []byte("hello")); n != 5 || err != nil {
		t.Fatalf("WriteNow = %d, %v; want 5, nil", n, err)
	}
	got := make([]byte, 5)
	if _, err := io.ReadFull(client, got); err != nil || string(got) != "hello" {
		t.Fatalf("read %q, %v", got, err)
	}
	// A peer that does not read: each call takes what there is room for
	// (the kernel may make more as it moves bytes to the peer), until
	// there is none, and none waits for room.
	big := make([]byte, 64<<20)
	start := time.Now()
	for i := 0; ; i++ {
		n, err := WriteNow(server, big)
		if err != nil || n == len(big) {
			t.Fatalf("WriteNow of 64 MiB to a peer not reading = %d, %v; want part of it", n, err)
		}
		if n == 0 {
			break
		}
		if i == 10000 {
			t.Fatal("the socket never filled")
		}
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("filling the socket took %v", d)
	}
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if n, err := WriteNow(a, []byte("x")); n != 0 || err != nil {
		t.Fatalf("WriteNow to a pipe = %d, %v; want 0, nil", n, err)
	}
}

package relay

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"

	"github.com/sluice-dev/sluice/internal/testnet"
	"github.com/sluice-dev/sluice/pkg/chain"
)

// echoPair starts Copy as an echo on the server end of a loopback pair.
func echoPair(t *testing.T, idle time.Duration, st *Stats) (cl, srv *net.TCPConn, c *chain.Conn, done chan error) {
	t.Helper()
	cl, srv = testnet.TCPPair(t)
	_ = cl.SetDeadline(time.Now().Add(30 * time.Second))
	c = chain.NewConn(srv, 1, "t", idle, hclog.NewNullLogger())
	done = make(chan error, 1)
	go func() { done <- Copy(c, srv, srv, In|Out, st) }()
	return cl, srv, c, done
}

func sockopt(t *testing.T, c *net.TCPConn, level, opt int) int {
	t.Helper()
	var v int
	var err error
	rc, _ := c.SyscallConn()
	_ = rc.Control(func(fd uintptr) { v, err = unix.GetsockoptInt(int(fd), level, opt) })
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func waitCopy(t *testing.T, done chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("Copy did not return")
		return nil
	}
}

// TestEchoParksWithoutReading: once it has echoed two messages, an echo
// on a TCP socket has TCP_INQ on, and parks after a read that emptied the queue
// without reading again. Many small round trips come back intact and are
// counted exactly.
func TestEchoParksWithoutReading(t *testing.T) {
	cl, srv, c, done := echoPair(t, time.Minute, nil)
	testnet.MustEcho(t, cl, "first")
	time.Sleep(50 * time.Millisecond) // the echo reads again, and parks
	if v := sockopt(t, srv, unix.SOL_TCP, unix.TCP_INQ); v != 0 {
		t.Fatalf("TCP_INQ = %d after one message, want 0: a connection per request pays no setsockopt", v)
	}
	testnet.MustEcho(t, cl, "second")
	testnet.MustEcho(t, cl, "third")
	if v := sockopt(t, srv, unix.SOL_TCP, unix.TCP_INQ); v != 1 {
		t.Fatalf("TCP_INQ = %d after the third message, want 1", v)
	}
	sent := len("first") + len("second") + len("third")
	for i := range 2000 {
		msg := string(bytes.Repeat([]byte{byte('a' + i%26)}, 1+i%200))
		testnet.MustEcho(t, cl, msg)
		sent += len(msg)
	}
	_ = cl.CloseWrite()
	if rest, err := io.ReadAll(cl); err != nil || len(rest) != 0 {
		t.Fatalf("after the last echo: %q, %v; want EOF", rest, err)
	}
	if err := waitCopy(t, done); err != nil {
		t.Fatalf("Copy = %v", err)
	}
	if c.BytesIn() != int64(sent) || c.BytesOut() != int64(sent) {
		t.Errorf("counted in/out %d/%d, want %d both", c.BytesIn(), c.BytesOut(), sent)
	}
}

// TestEchoLastBytesWithFIN: the peer's last bytes and its FIN are queued
// together before the echo reads them, so no readiness event follows the
// read that takes the bytes. An echo that parked after that short read
// would wait for good; TCP_INQ's count says the FIN is in, and the echo
// reads on to EOF.
func TestEchoLastBytesWithFIN(t *testing.T) {
	cl, srv := testnet.TCPPair(t)
	_ = cl.SetDeadline(time.Now().Add(30 * time.Second))
	c := chain.NewConn(srv, 1, "t", time.Minute, hclog.NewNullLogger())
	f := &flow{c: c, dst: srv, src: srv, dir: In | Out}
	f.dl.idle = time.Minute
	f.dl.conns[0] = srv
	r, ok := newIdleReader(srv)
	if !ok {
		t.Fatal("no idle reader on a TCP socket")
	}
	if !r.passOn(f) {
		t.Fatal("no TCP_INQ echo on a TCP socket")
	}
	if _, err := cl.Write([]byte("bye")); err != nil {
		t.Fatal(err)
	}
	_ = cl.CloseWrite()
	// Both in the queue before the echo looks: the state says the FIN
	// came, and the bytes wait.
	for deadline := time.Now().Add(5 * time.Second); ; {
		if state(t, srv) == unix.BPF_TCP_CLOSE_WAIT && connUnread(srv) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the bytes and the FIN did not arrive")
		}
		time.Sleep(time.Millisecond)
	}
	// A pause, in which Go's poller takes the readiness of those bytes,
	// as it would while an echo is busy writing: the echo's read resets
	// it, and its wait gets no other.
	time.Sleep(50 * time.Millisecond)
	done := make(chan error, 1)
	go func() { done <- f.direct(r) }()
	got, err := io.ReadAll(io.LimitReader(cl, 3))
	if err != nil || string(got) != "bye" {
		t.Fatalf("echoed %q, %v; want bye", got, err)
	}
	if err := waitCopy(t, done); err != nil {
		t.Fatalf("echo = %v", err)
	}
	if c.BytesIn() != 3 || c.BytesOut() != 3 {
		t.Errorf("counted in/out %d/%d, want 3/3", c.BytesIn(), c.BytesOut())
	}
}

func state(t *testing.T, c *net.TCPConn) uint8 {
	t.Helper()
	var info *unix.TCPInfo
	var err error
	rc, _ := c.SyscallConn()
	_ = rc.Control(func(fd uintptr) { info, err = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO) })
	if err != nil {
		t.Fatal(err)
	}
	return info.State
}

// TestEchoHeldWrite: a client that sends without reading fills the
// echo's socket; the echo keeps what it could not write, waits for room
// with Go's poller, and every byte comes back in order.
func TestEchoHeldWrite(t *testing.T) {
	// Small buffers from the start: a window once advertised never
	// shrinks.
	small := func(opt int) func(string, string, syscall.RawConn) error {
		return func(_, _ string, rc syscall.RawConn) error {
			return rc.Control(func(fd uintptr) { _ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, opt, 4096) })
		}
	}
	ln, err := (&net.ListenConfig{Control: small(unix.SO_SNDBUF)}).Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	conn, err := (&net.Dialer{Control: small(unix.SO_RCVBUF)}).Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	cl := conn.(*net.TCPConn)
	defer cl.Close()
	_ = cl.SetDeadline(time.Now().Add(30 * time.Second))
	srv, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	st := new(Stats)
	c := chain.NewConn(srv, 1, "t", time.Minute, hclog.NewNullLogger())
	done := make(chan error, 1)
	go func() { done <- Copy(c, srv, srv, In|Out, st) }()
	testnet.MustEcho(t, cl, "first")
	var want []byte
	for i := range 400 {
		msg := bytes.Repeat([]byte{byte('a' + i%26)}, 100)
		want = append(want, msg...)
		if _, err := cl.Write(msg); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Microsecond) // small reads, never bulk
	}
	_ = cl.CloseWrite()
	got, err := io.ReadAll(cl)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("got %d bytes (%v), want %d intact", len(got), err, len(want))
	}
	if err := waitCopy(t, done); err != nil {
		t.Fatalf("Copy = %v", err)
	}
	if st.Held.Load() == 0 {
		t.Error("no write was held: the test did not fill the socket")
	}
	if n := int64(len(want) + len("first")); c.BytesIn() != n || c.BytesOut() != n {
		t.Errorf("counted in/out %d/%d, want %d both", c.BytesIn(), c.BytesOut(), n)
	}
}

// TestEchoIdleTimeout: an echo parked after a message ends with the idle
// timeout, not before it.
func TestEchoIdleTimeout(t *testing.T) {
	const idle = 200 * time.Millisecond
	cl, _, _, done := echoPair(t, idle, nil)
	testnet.MustEcho(t, cl, "x")
	quiet := time.Now()
	if err := waitCopy(t, done); !errors.Is(err, chain.ErrIdleTimeout) {
		t.Fatalf("Copy = %v, want the idle timeout", err)
	}
	if d := time.Since(quiet); d < idle-idle/4 {
		t.Errorf("ended %v after the last byte, before the %v timeout", d, idle)
	}
}

// TestEchoPeerReset: a peer that resets the connection ends the echo
// with the reset, not a hang.
func TestEchoPeerReset(t *testing.T) {
	cl, _, _, done := echoPair(t, time.Minute, nil)
	testnet.MustEcho(t, cl, "x")
	_ = cl.SetLinger(0)
	_ = cl.Close()
	if err := waitCopy(t, done); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("Copy = %v, want a reset", err)
	}
}

// TestRelayPassesOn: on its goroutines, a relay's direction between two
// TCP sockets passes on within its wait from its second message on, as
// an echo does: TCP_INQ is on for the client's socket, every message
// arrives intact both ways, the counts are exact, and the client's last
// bytes with its FIN reach the upstream before its EOF.
func TestRelayPassesOn(t *testing.T) {
	setNoLoop(t, true)
	lp := startPair(t, context.Background(), nil, testnet.Listen(t, "tcp"), time.Minute, 1, nil)
	raw, ok := lp.c.Raw().(*net.TCPConn)
	if !ok {
		t.Fatalf("the accepted connection is a %T", lp.c.Raw())
	}
	var in, out int
	exchange := func(msg string) {
		t.Helper()
		mustRelay(t, lp.cl, lp.up, msg)
		mustRelay(t, lp.up, lp.cl, strings.ToUpper(msg))
		in += len(msg)
		out += len(msg)
	}
	exchange("first")
	if v := sockopt(t, raw, unix.SOL_TCP, unix.TCP_INQ); v != 0 {
		t.Fatalf("TCP_INQ = %d after one message, want 0: a connection per request pays no setsockopt", v)
	}
	for i := range 500 {
		exchange(string(bytes.Repeat([]byte{byte('a' + i%26)}, 1+i%300)))
	}
	if v := sockopt(t, raw, unix.SOL_TCP, unix.TCP_INQ); v != 1 {
		t.Fatalf("TCP_INQ = %d after many messages, want 1", v)
	}
	if _, err := lp.cl.Write([]byte("bye")); err != nil {
		t.Fatal(err)
	}
	_ = lp.cl.(*net.TCPConn).CloseWrite()
	if got, err := io.ReadAll(lp.up); err != nil || string(got) != "bye" {
		t.Fatalf("upstream got %q, %v; want bye and EOF", got, err)
	}
	if _, err := lp.up.Write([]byte("ok")); err != nil {
		t.Fatal(err)
	}
	_ = lp.up.(*net.TCPConn).CloseWrite()
	if got, err := io.ReadAll(lp.cl); err != nil || string(got) != "ok" {
		t.Fatalf("client got %q, %v; want ok and EOF", got, err)
	}
	if err := lp.wait(t); err != nil {
		t.Fatalf("Relay = %v", err)
	}
	if lp.c.BytesIn() != int64(in+3) || lp.c.BytesOut() != int64(out+2) {
		t.Errorf("counted in/out %d/%d, want %d/%d", lp.c.BytesIn(), lp.c.BytesOut(), in+3, out+2)
	}
}

// mustRelay writes msg on from and reads it whole on to.
func mustRelay(t *testing.T, from, to net.Conn, msg string) {
	t.Helper()
	if _, err := from.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(to, got); err != nil || string(got) != msg {
		t.Fatalf("relayed %q, %v; want %q", got, err, msg)
	}
}

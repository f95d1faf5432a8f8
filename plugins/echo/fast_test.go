package echo

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/pkg/chain"
)

// wrapped stands for a middleware's wrapper: same bytes, but not the
// socket itself.
type wrapped struct{ net.Conn }

func (w wrapped) CloseWrite() error { return w.Conn.(*net.TCPConn).CloseWrite() }

type outcome struct {
	err     error
	in, out int64
	took    time.Duration
}

// run accepts one connection and serves echo on it (through a wrapper
// when wrap is set); the handler's stats count switches to splice.
func run(t *testing.T, idle time.Duration, wrap bool) (*net.TCPConn, <-chan outcome, *atomic.Int64) {
	t.Helper()
	h := &Handler{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	res := make(chan outcome, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			res <- outcome{err: err}
			return
		}
		defer nc.Close()
		c := chain.NewConn(nc, 1, "t", idle, nil)
		if wrap {
			c.Conn = wrapped{nc}
		}
		start := time.Now()
		err = h.ServeStream(context.Background(), c)
		res <- outcome{err, c.BytesIn(), c.BytesOut(), time.Since(start)}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	return c.(*net.TCPConn), res, &h.paths.Splice
}

func TestBulkSwitchesToSplice(t *testing.T) {
	for _, wrap := range []bool{false, true} {
		c, res, spliced := run(t, time.Minute, wrap)
		payload := make([]byte, 4<<20+5)
		rand.Read(payload)
		go func() {
			c.Write(payload)
			c.CloseWrite()
		}()
		got, err := io.ReadAll(c)
		if err != nil || !bytes.Equal(got, payload) {
			t.Fatalf("wrap=%v: got %d bytes (err %v), want %d intact", wrap, len(got), err, len(payload))
		}
		r := <-res
		if r.err != nil || r.in != int64(len(payload)) || r.out != int64(len(payload)) {
			t.Errorf("wrap=%v: result %+v, want nil error and %d bytes each way", wrap, r, len(payload))
		}
		// Behind a wrapper the bytes must go through it: no splice.
		if want := map[bool]int64{false: 1, true: 0}[wrap]; spliced.Load() != want {
			t.Errorf("wrap=%v: %d switches to splice, want %d", wrap, spliced.Load(), want)
		}
	}
}

// TestPacedBulkSwitchesToSplice: a sender that waits for each 16 KiB
// block's echo never fills the buffer, and still gets spliced.
func TestPacedBulkSwitchesToSplice(t *testing.T) {
	c, res, spliced := run(t, 0, false)
	block := make([]byte, 16<<10)
	rand.Read(block)
	got := make([]byte, len(block))
	for i := range 8 {
		c.Write(block)
		if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, block) {
			t.Fatalf("block %d: %v", i, err)
		}
	}
	c.CloseWrite()
	if r := <-res; r.err != nil || r.out != 8*int64(len(block)) {
		t.Errorf("result %+v", r)
	}
	if n := spliced.Load(); n != 1 {
		t.Errorf("%d switches to splice, want 1", n)
	}
}

func TestSmallMessagesStayInTheLoop(t *testing.T) {
	c, res, spliced := run(t, 0, false)
	msg := bytes.Repeat([]byte("x"), 64)
	buf := make([]byte, 64)
	for range 200 {
		c.Write(msg)
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatal(err)
		}
	}
	c.CloseWrite()
	if _, err := c.Read(buf); !errors.Is(err, io.EOF) {
		t.Errorf("after half-close: %v, want EOF", err)
	}
	if r := <-res; r.err != nil || r.in != 200*64 {
		t.Errorf("result %+v", r)
	}
	if n := spliced.Load(); n != 0 {
		t.Errorf("64-byte messages switched to splice %d times", n)
	}
}

// TestIdleTimeoutAfterSplice: a connection that moved bulk data and then
// went quiet is closed for idleness, not before the timeout.
func TestIdleTimeoutAfterSplice(t *testing.T) {
	const idle = 200 * time.Millisecond
	c, res, spliced := run(t, idle, false)
	payload := make([]byte, 512<<10)
	go c.Write(payload)
	if _, err := io.ReadFull(c, make([]byte, len(payload))); err != nil {
		t.Fatal(err)
	}
	quiet := time.Now()
	r := <-res
	if !errors.Is(r.err, chain.ErrIdleTimeout) {
		t.Fatalf("err = %v, want idle timeout", r.err)
	}
	// quiet is taken after the client read the last byte, a moment after
	// echo moved it; a close a quarter early would be a real defect.
	if since := time.Since(quiet); since < idle-idle/4 {
		t.Errorf("closed %v after the last byte, before the %v idle timeout", since, idle)
	}
	if spliced.Load() != 1 {
		t.Errorf("%d switches to splice, want 1", spliced.Load())
	}
}

// TestUnixBulkSplices: a Unix stream socket takes the same paths as TCP,
// splice included, with every byte back and half-close honoured.
func TestUnixBulkSplices(t *testing.T) {
	h := &Handler{}
	spliced := &h.paths.Splice
	ln, err := net.Listen("unix", t.TempDir()+"/echo.sock")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	res := make(chan error, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			res <- err
			return
		}
		defer nc.Close()
		res <- h.ServeStream(context.Background(), chain.NewConn(nc, 1, "t", time.Minute, nil))
	}()
	c, err := net.Dial("unix", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	payload := make([]byte, 2<<20+3)
	rand.Read(payload)
	go func() {
		c.Write(payload)
		c.(*net.UnixConn).CloseWrite()
	}()
	got, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("got %d bytes (err %v), want %d intact", len(got), err, len(payload))
	}
	if err := <-res; err != nil {
		t.Errorf("ServeStream: %v", err)
	}
	if spliced.Load() != 1 {
		t.Errorf("%d switches to splice, want 1", spliced.Load())
	}
}

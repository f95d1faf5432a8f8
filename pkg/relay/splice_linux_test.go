package relay

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/testnet"
)

// splicerPair connects a to b and c to d, and returns a splicer from b to
// c, released at the test's end: what a writes, d reads.
func splicerPair(t *testing.T) (a, b, c, d *net.TCPConn, s *splicer) {
	t.Helper()
	a, b = testnet.TCPPair(t)
	c, d = testnet.TCPPair(t)
	s, ok := newSplicer(c, b)
	if !ok {
		t.Fatal("no splicer between TCP sockets")
	}
	t.Cleanup(s.release)
	return a, b, c, d, s
}

// TestsplicerMovesEverything: A's bytes reach D through the B→C splice,
// intact, and the end of A shows as EOF.
func TestSplicerMovesEverything(t *testing.T) {
	a, _, c, d, s := splicerPair(t)

	payload := make([]byte, 3<<20+17)
	rand.Read(payload)
	go func() {
		a.Write(payload)
		a.CloseWrite()
	}()
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(d)
		got <- b
	}()
	var moved int
	for {
		n, err := s.move()
		moved += n
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("Move: %v after %d bytes", err, moved)
		}
	}
	c.CloseWrite()
	if moved != len(payload) {
		t.Errorf("moved %d bytes, want %d", moved, len(payload))
	}
	if b := <-got; !bytes.Equal(b, payload) {
		t.Errorf("received %d bytes, not the %d sent", len(b), len(payload))
	}
}

// TestsplicerWaitsWithoutPipe: once the source is drained, the splicer
// waits for more without holding its pipe.
func TestSplicerWaitsWithoutPipe(t *testing.T) {
	a, b, _, d, s := splicerPair(t)
	a.Write([]byte("ping"))
	if n, err := s.move(); err != nil || n != 4 {
		t.Fatalf("Move = %d, %v", n, err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(d, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("read %q, %v", buf, err)
	}
	if s.p == nil {
		t.Fatal("no pipe held while bytes flow")
	}
	b.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := s.move(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Move on a quiet source = %v, want a deadline error", err)
	}
	if s.p != nil {
		t.Error("pipe held while waiting for data")
	}
}

// TestSplicerFlushCarriesOn: a move whose pump found its deadline passed
// (sluice held up between taking the bytes and pumping them) keeps the
// bytes in its pipe, and flush delivers them once the deadline is pushed
// on, as flow.splice does when dst has room.
func TestSplicerFlushCarriesOn(t *testing.T) {
	a, _, c, d, s := splicerPair(t)
	_ = c.SetWriteDeadline(time.Unix(1, 0))
	if _, err := a.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	if n, err := s.move(); !errors.Is(err, os.ErrDeadlineExceeded) || n != 4 || s.drained() {
		t.Fatalf("move = %d, %v (drained %v), want 4 bytes taken and the pump's deadline error", n, err, s.drained())
	}
	_ = c.SetWriteDeadline(time.Now().Add(time.Minute))
	if err := s.flush(); err != nil || !s.drained() {
		t.Fatalf("flush = %v (drained %v)", err, s.drained())
	}
	buf := make([]byte, 4)
	_ = d.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.ReadFull(d, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("read %q, %v", buf, err)
	}
}

//go:build unix

package relay

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/testnet"
)

func TestIdleReaderHoldsNoBufferWhileWaiting(t *testing.T) {
	client, server := testnet.TCPPair(t)
	r, ok := newIdleReader(server)
	if !ok {
		t.Fatal("no idleReader for a TCP socket")
	}
	defer r.close()

	if _, err := client.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	p, err := r.read()
	if err != nil || string(p) != "hello" {
		t.Fatalf("Read = %q, %v", p, err)
	}
	if !r.buffered() {
		t.Error("no buffer held right after a read that returned data")
	}

	// Nothing more comes: the wait ends at the deadline, and the buffer
	// went back to the pool before the wait began.
	server.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := r.read(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read on a quiet socket = %v, want a deadline error", err)
	}
	if r.buffered() {
		t.Error("buffer held while waiting for data")
	}

	server.SetReadDeadline(time.Time{})
	client.Write([]byte("again"))
	client.CloseWrite()
	if p, err := r.read(); err != nil || string(p) != "again" {
		t.Fatalf("Read = %q, %v", p, err)
	}
	if _, err := r.read(); !errors.Is(err, io.EOF) {
		t.Fatalf("Read after the peer's close = %v, want EOF", err)
	}
}

func TestIdleReaderRefusesWrappers(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if _, ok := newIdleReader(a); ok {
		t.Error("idleReader over a net.Pipe, which has no descriptor")
	}
}

//go:build unix

package proxy

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
	"golang.org/x/sys/unix"

	"github.com/sluice-dev/sluice/internal/testnet"
	"github.com/sluice-dev/sluice/pkg/chain"
)

// TestFirstBytesCarriedToTheNextUpstream: the client bytes read to go
// with the header of an upstream whose write failed go to the next one,
// and are counted once, when they got there.
func TestFirstBytesCarriedToTheNextUpstream(t *testing.T) {
	h := provisioned(t, "tcp", "tcp://127.0.0.1:1")
	h.sendVersion = 2
	client, front := testnet.TCPPair(t)
	c := chain.NewConn(front, 1, "t", 0, nil)
	if _, err := client.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	// Let "hello" reach front's socket: ReadWaiting takes only what is
	// there.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		if n, _ := peekLen(front); n == 5 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	var first firstBytes
	defer first.release()
	deadline := time.Now().Add(5 * time.Second)

	dead, other := net.Pipe()
	_ = other.Close()
	if err := h.writeProxyHeader(dead, c, &first, true, deadline); err == nil {
		t.Fatal("a write to a closed pipe succeeded")
	}
	if got := string(first.pending()); got != "hello" {
		t.Fatalf("pending after the failed write: %q, want hello", got)
	}
	if c.BytesIn() != 0 {
		t.Fatalf("%d bytes counted before any reached an upstream", c.BytesIn())
	}

	good, peer := testnet.TCPPair(t)
	if err := h.writeProxyHeader(good, c, &first, true, deadline); err != nil {
		t.Fatal(err)
	}
	_ = good.CloseWrite()
	b, err := io.ReadAll(peer)
	if err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(bytes.NewReader(b))
	if _, err := proxyproto.Read(r); err != nil {
		t.Fatalf("the next upstream got %q: %v", b, err)
	}
	if rest, _ := io.ReadAll(r); string(rest) != "hello" {
		t.Fatalf("the next upstream got %q after the header, want hello", rest)
	}
	if first.pending() != nil || c.BytesIn() != 5 {
		t.Fatalf("after delivery: pending %q, %d bytes counted; want none and 5", first.pending(), c.BytesIn())
	}
}

// peekLen is how many bytes wait in c's socket.
func peekLen(c *net.TCPConn) (int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var n int
	buf := make([]byte, 64)
	cerr := rc.Control(func(fd uintptr) {
		n, _, err = unix.Recvfrom(int(fd), buf, unix.MSG_PEEK|unix.MSG_DONTWAIT)
	})
	if cerr != nil {
		return 0, cerr
	}
	if err == syscall.EAGAIN {
		return 0, nil
	}
	return n, err
}

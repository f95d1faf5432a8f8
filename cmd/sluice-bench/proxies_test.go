//go:build linux

package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// startProxy runs the proxy variant name on a fresh listener in front of
// upstream until the returned stop is called.
func startProxy(t *testing.T, name, upstream string) (addr string, stop func()) {
	t.Helper()
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := proxyVariants[name](ctx, ln, upstream); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	})
	return ln.Addr().String(), func() {
		cancel()
		wg.Wait()
		_ = ln.Close()
	}
}

// TestBaselineProxies: each baseline proxy carries what the bench's loads
// send (short round trips on fresh connections, a bulk transfer that
// fills the socket buffers, half-close both ways), and closes a client
// whose upstream refuses instead of holding it.
func TestBaselineProxies(t *testing.T) {
	defer goleak.VerifyNone(t)
	up, stopUp := echoServer(t)
	defer stopUp()
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close()

	for name := range proxyVariants {
		t.Run(name, func(t *testing.T) {
			addr, stop := startProxy(t, name, up)
			defer stop()
			msg := bytes.Repeat([]byte("x"), 64)
			for i := range 200 {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				c.SetDeadline(time.Now().Add(10 * time.Second))
				in := make([]byte, len(msg))
				if _, err := c.Write(msg); err != nil {
					t.Fatalf("connection %d: %v", i, err)
				}
				if _, err := io.ReadFull(c, in); err != nil || !bytes.Equal(in, msg) {
					t.Fatalf("connection %d: read %q, %v", i, in, err)
				}
				c.Close()
			}

			// 8 MiB each way at once: more than the socket buffers
			// hold, so writes come back short and wait their turn.
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(30 * time.Second))
			payload := bytes.Repeat([]byte("0123456789abcdef"), 1<<19)
			var wg sync.WaitGroup
			wg.Go(func() {
				c.Write(payload)
				c.(*net.TCPConn).CloseWrite()
			})
			// Read late, so that the proxy's writes to the client come
			// back short and it must wait for the client to drain.
			time.Sleep(300 * time.Millisecond)
			got, err := io.ReadAll(c)
			wg.Wait()
			if err != nil || !bytes.Equal(got, payload) {
				t.Errorf("bulk: got %d bytes (%v), want %d", len(got), err, len(payload))
			}

			deadProxy, stopDead := startProxy(t, name, deadAddr)
			defer stopDead()
			d, err := net.Dial("tcp", deadProxy)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			d.SetDeadline(time.Now().Add(10 * time.Second))
			if n, err := d.Read(make([]byte, 1)); n != 0 || err == nil {
				t.Errorf("upstream refused: read %d bytes, %v; want the connection closed", n, err)
			}
		})
	}
}

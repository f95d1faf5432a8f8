//go:build unix

package relay

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/testnet"
)

type wrapped struct{ net.Conn }

func TestReadWaiting(t *testing.T) {
	cl, sv := testnet.TCPPair(t)
	buf := make([]byte, 64)

	// Nothing there: no wait, no bytes.
	start := time.Now()
	if n, ok, err := ReadWaiting(sv, buf); n != 0 || !ok || err != nil {
		t.Fatalf("empty socket: %d, %v, %v; want 0, true, nil", n, ok, err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("an empty socket took %v: it waited", d)
	}

	// Bytes there: read, and only once.
	if _, err := cl.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	var got []byte
	for deadline := time.Now().Add(10 * time.Second); len(got) < 5 && time.Now().Before(deadline); {
		n, ok, err := ReadWaiting(sv, buf)
		if !ok || err != nil {
			t.Fatalf("read: %v, %v", ok, err)
		}
		got = append(got, buf[:n]...)
		if len(got) < 5 {
			time.Sleep(time.Millisecond)
		}
	}
	if string(got) != "hello" {
		t.Fatalf("read %q, want hello", got)
	}

	// A wrapper is not read.
	if _, ok, _ := ReadWaiting(wrapped{sv}, buf); ok {
		t.Fatal("a wrapped conn was read")
	}

	// The peer's FIN: io.EOF, as often as asked.
	_ = cl.CloseWrite()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, _, err := ReadWaiting(sv, buf)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil || time.Now().After(deadline) {
			t.Fatalf("after the FIN: %v; want io.EOF", err)
		}
		time.Sleep(time.Millisecond)
	}
	if _, err := sv.Read(buf); !errors.Is(err, io.EOF) {
		t.Fatalf("the socket's own Read after: %v, want io.EOF", err)
	}
}

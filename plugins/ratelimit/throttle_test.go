package ratelimit

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/testnet"
)

func TestThrottledReadSplitsReadsLargerThanTheBurst(t *testing.T) {
	client, server := testnet.TCPPair(t)
	if _, err := client.Write(make([]byte, 4000)); err != nil {
		t.Fatal(err)
	}
	tc := newThrottled(context.Background(), server, 1e9, 1000)
	buf := make([]byte, 4096)
	total := 0
	for total < 4000 {
		n, err := tc.Read(buf)
		if err != nil {
			t.Fatalf("read after %d bytes: %v", total, err)
		}
		if n > 1000 {
			t.Fatalf("read %d bytes at once; want at most the burst, 1000", n)
		}
		total += n
	}
}

func TestThrottledReadEndsWithItsContext(t *testing.T) {
	client, server := testnet.TCPPair(t)
	ctx, cancel := context.WithCancel(context.Background())
	// 1 byte/s, burst 10: the second read of 10 would wait 10 s.
	tc := newThrottled(ctx, server, 1, 10)
	if _, err := client.Write(make([]byte, 20)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 10)
	if _, err := io.ReadFull(tc, buf); err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	n, err := tc.Read(buf)
	if n == 0 || !errors.Is(err, context.Canceled) {
		t.Fatalf("read = %d, %v; want the bytes read and context.Canceled", n, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("the wait lasted %v after its context ended", d)
	}
}

func TestThrottledForwardsHalfClose(t *testing.T) {
	client, server := testnet.TCPPair(t)
	tc := newThrottled(context.Background(), server, 1e6, 1000)
	if err := tc.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	_ = client.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := client.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("client read = %d, %v; want EOF after the server's half-close", n, err)
	}
	// The other direction still works.
	if _, err := client.Write([]byte("ok")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(tc, make([]byte, 2)); err != nil {
		t.Fatal(err)
	}
}

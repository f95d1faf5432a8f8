package proxy_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/plugins/proxy"
)

// TestUDPSlowLookupStallsNoFlow: a new flow whose upstream is a host
// name the DNS server never answers for waits for it on its own: another
// client, on an upstream given by address, is answered meanwhile, and the
// first client's datagram is sent on once the lookup has failed over.
func TestUDPSlowLookupStallsNoFlow(t *testing.T) {
	// Restored after the harness has stopped (cleanups run last first).
	t.Cleanup(proxy.SetPacketResolver(&net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			<-ctx.Done() // a DNS server that never answers
			return nil, ctx.Err()
		},
	}))
	live := newUDPEcho(t)
	_, port, _ := net.SplitHostPort(live.pc.LocalAddr().String())
	h := newHarness(t)
	// round_robin starts at the first upstream: the first client's flow
	// looks the name up, the second's goes to the address.
	h.Apply(udpFront("0", "        connect_timeout: 3s\n", "udp://upstream.invalid:"+port, live.url()))
	first, second := dialUDP(t, h.Addr("front")), dialUDP(t, h.Addr("front"))
	if _, err := first.Write([]byte("one")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // the lookup has begun
	start := time.Now()
	if got, err := exchange(second, "two", 2*time.Second); err != nil || got != "two" {
		t.Fatalf("second client, on the live upstream: got %q, %v after %v", got, err, time.Since(start))
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("the second client waited %v for the first's lookup", d)
	}
	// The lookup times out after connect_timeout; the flow fails over to
	// the live upstream and its first datagram goes there.
	_ = first.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 16)
	if n, err := first.Read(buf); err != nil || string(buf[:n]) != "one" {
		t.Fatalf("first client: got %q, %v", buf[:n], err)
	}
}

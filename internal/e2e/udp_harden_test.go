package e2e

import (
	"fmt"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/testnet"
)

// A client sending steadily to a UDP proxy whose only upstream answers
// with ICMP port unreachable costs a few flows a second, not one a
// datagram: each failed flow used to be forgotten at once, so that every
// datagram started a flow (a socket, a goroutine, a log record at info)
// that failed in turn. Other clients of the listener still get flows of
// their own, and other listeners are served.
func TestUDPDeadUpstreamFlowsBounded(t *testing.T) {
	deadPC, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	dead := deadPC.LocalAddr().String()
	_ = deadPC.Close() // nothing listens there: ICMP port unreachable
	cfg := fmt.Sprintf(`admin: {address: 127.0.0.1:0}
listeners:
  - {name: echo-tcp, network: tcp, address: 127.0.0.1:0, chain: [{handler: echo}]}
  - {name: udp-dead, network: udp, address: 127.0.0.1:0, chain: [{handler: log}, {handler: proxy, upstreams: ["udp://%s"]}]}
`, dead)
	p := startSluice(t, writeConfig(t, t.TempDir(), cfg))
	admin := p.adminAddr()
	target, err := net.ResolveUDPAddr("udp", p.addr("udp-dead"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialUDP("udp", nil, target)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	// 1000 datagrams over about two seconds, paced so that the
	// listener's receive buffer keeps them all.
	const sent = 1000
	begin := time.Now()
	for i := range sent {
		_, _ = c.Write([]byte("ping")) // an ICMP error may surface here: ignored
		if i%10 == 9 {
			time.Sleep(20 * time.Millisecond)
		}
	}
	// A new client's datagram, read after all of the above, is tried.
	other, err := net.DialUDP("udp", nil, target)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	series := `sluice_connections_total{listener="udp-dead"}`
	before, _ := metricValue(getMetrics(t, admin), series)
	if _, err := other.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	var total float64
	deadline := time.Now().Add(10 * time.Second)
	for total <= before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		total, _ = metricValue(getMetrics(t, admin), series)
	}
	if total <= before {
		t.Fatalf("%s stayed at %v: a new client got no flow", series, total)
	}
	elapsed := time.Since(begin)
	// Three at once, then one a second, give or take two; before, about
	// one every other datagram (526 of 1000).
	limit := 3 + int(elapsed/time.Second) + 2
	t.Logf("%d datagrams in %v: %v flows, %d flow records", sent, elapsed, total, p.count("flow closed"))
	if int(total) > limit+1 {
		t.Errorf("%s = %v after %d datagrams in %v, want at most %d", series, total, sent, elapsed, limit+1)
	}
	if n := p.count("flow closed"); n > limit+1 {
		t.Errorf("%d 'flow closed' records for %d datagrams in %v, want at most %d", n, sent, elapsed, limit+1)
	}
	tc := dialT(t, "tcp", p.addr("echo-tcp"))
	testnet.MustEcho(t, tc, "tcp still served\n")
	_ = tc.Close() // or the shutdown would wait for it
	p.signal(syscall.SIGTERM)
	if code := p.wait(20 * time.Second); code != 0 {
		t.Errorf("exit %d", code)
	}
}

package proxy

import (
	"net"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
)

// TestCheckerCloseEndsProbe: close ends a probe in progress at once. The
// upstream accepts and never answers, and the probe waits for expect
// within a timeout of an hour. Before, close waited the hour out, and
// with it the reload that removed the upstream, every reload after it
// and the drain at SIGTERM.
func TestCheckerCloseEndsProbe(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	opts := HealthCheck{Interval: MinCheckInterval, Timeout: time.Hour, Expect: "PONG"}.withDefaults()
	tg := target{url: "tcp://" + ln.Addr().String(), network: "tcp", address: ln.Addr().String()}
	c := newChecker(tg, nil, opts, hclog.NewNullLogger(), prometheus.NewGauge(prometheus.GaugeOpts{Name: "up"}))
	var conn net.Conn
	select {
	case conn = <-accepted:
		defer conn.Close()
	case <-time.After(10 * time.Second):
		c.close()
		t.Fatal("no probe connected within 10s")
	}
	closed := make(chan struct{})
	start := time.Now()
	go func() {
		c.close()
		close(closed)
	}()
	select {
	case <-closed:
		t.Logf("close ended the probe in %v", time.Since(start).Round(time.Millisecond))
	case <-time.After(10 * time.Second):
		t.Fatal("close still waiting on the probe after 10s")
	}
	if st := c.status(); st.State != StateUnchecked || st.LastError != "" {
		t.Errorf("a probe cut by close was recorded: %+v", st)
	}
	// The probe's connection is closed: the upstream reads EOF.
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := conn.Read(make([]byte, 1)); n != 0 || err == nil || isTimeout(err) {
		t.Errorf("upstream read after close: %d, %v; want EOF", n, err)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

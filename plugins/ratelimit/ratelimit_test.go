package ratelimit_test

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/plugins/ratelimit"
)

func rejected(h *harness, listener, reason string) int {
	return int(h.Metric("sluice_ratelimit_rejected_total", "listener", listener, "reason", reason))
}

func TestConnectionsPerSecond(t *testing.T) {
	h := newHarness(t)
	h.Apply(`
listeners:
  - name: rl-rate
    network: tcp
    address: 127.0.0.1:0
    chain:
      - handler: ratelimit
        connections_per_second: 2
        burst: 5
      - handler: echo
`)
	addr := h.Addr("rl-rate")
	start := time.Now()
	conns := make([]net.Conn, 30)
	for i := range conns {
		conns[i] = dialFrom(t, "", addr)
	}
	elapsed := time.Since(start)
	n := 0
	for _, c := range conns {
		if served(t, c) {
			n++
		}
	}
	// 5 from the burst, then 2 a second: about 5 for quick dials. The
	// bound grows with the time the dials took on a loaded machine.
	upper := max(9, 5+2*int(elapsed.Seconds()+1))
	if n < 5 || n > upper {
		t.Fatalf("served %d of 30 connections in %v; want 5 to %d", n, elapsed, upper)
	}
	if got := rejected(h, "rl-rate", "rate"); got != 30-n {
		t.Errorf("rejected{reason=rate} = %d, want %d", got, 30-n)
	}
	if !strings.Contains(h.Log(), "connection rejected") || !strings.Contains(h.Log(), "reason=rate") {
		t.Errorf("no debug line with reason=rate in the log:\n%s", h.Log())
	}
}

func TestMaxConnections(t *testing.T) {
	h := newHarness(t)
	h.Apply(`
listeners:
  - name: rl-max
    network: tcp
    address: 127.0.0.1:0
    chain:
      - handler: ratelimit
        max_connections: 3
      - handler: echo
`)
	addr := h.Addr("rl-max")
	var held []net.Conn
	for i := 0; i < 3; i++ {
		c := dialFrom(t, "", addr)
		if !served(t, c) {
			t.Fatalf("connection %d of 3 refused", i+1)
		}
		held = append(held, c)
	}
	if served(t, dialFrom(t, "", addr)) {
		t.Fatal("4th connection served; want it closed")
	}
	if got := rejected(h, "rl-max", "max"); got != 1 {
		t.Errorf("rejected{reason=max} = %d, want 1", got)
	}

	// Once the server is done with one, its slot takes the next at once.
	finish(t, held[0])
	h.WaitOpen("rl-max", 2)
	if !served(t, dialFrom(t, "", addr)) {
		t.Fatal("a freed slot was not reused")
	}
	if got := rejected(h, "rl-max", "max"); got != 1 {
		t.Errorf("rejected{reason=max} = %d after reuse, want still 1", got)
	}
}

func TestPerIPMaxConnections(t *testing.T) {
	h := newHarness(t)
	h.Apply(`
listeners:
  - name: rl-ipmax
    network: tcp
    address: 127.0.0.1:0
    chain:
      - handler: ratelimit
        per_ip:
          max_connections: 2
      - handler: echo
`)
	addr := h.Addr("rl-ipmax")
	for i := 0; i < 2; i++ {
		if !served(t, dialFrom(t, "127.0.0.1", addr)) {
			t.Fatalf("connection %d of 2 from 127.0.0.1 refused", i+1)
		}
	}
	if served(t, dialFrom(t, "127.0.0.1", addr)) {
		t.Fatal("3rd connection from 127.0.0.1 served; want it closed")
	}
	for i := 0; i < 2; i++ {
		if !served(t, dialFrom(t, "127.0.0.2", addr)) {
			t.Fatalf("connection %d from 127.0.0.2 refused: the limit is per address", i+1)
		}
	}
	if got := rejected(h, "rl-ipmax", "per_ip_max"); got != 1 {
		t.Errorf("rejected{reason=per_ip_max} = %d, want 1", got)
	}
}

func TestPerIPOnUnixSharesOneKey(t *testing.T) {
	h := newHarness(t)
	sock := filepath.Join(t.TempDir(), "rl.sock")
	h.Apply(fmt.Sprintf(`
listeners:
  - name: rl-unix
    network: unix
    address: %s
    chain:
      - handler: ratelimit
        per_ip:
          max_connections: 1
      - handler: echo
`, sock))
	dial := func() net.Conn {
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	if !served(t, dial()) {
		t.Fatal("first unix connection refused")
	}
	if served(t, dial()) {
		t.Fatal("second unix connection served; all unix clients share one per_ip entry")
	}
}

func TestPerIPTableStaysWithinItsCap(t *testing.T) {
	const capacity = 8
	h := newHarness(t)
	h.Apply(fmt.Sprintf(`
listeners:
  - name: rl-table
    network: tcp
    address: 127.0.0.1:0
    chain:
      - handler: ratelimit
        per_ip:
          connections_per_second: 0.01   # idle entries would live 100s
          burst: 1
          max_entries: %d
      - handler: echo
`, capacity))
	addr := h.Addr("rl-table")
	peak := 0
	// Many sources, one connection each: idle entries make room.
	for i := 2; i < 2+5*capacity; i++ {
		c := dialFrom(t, fmt.Sprintf("127.0.0.%d", i), addr)
		if !served(t, c) {
			t.Fatalf("connection from 127.0.0.%d refused", i)
		}
		finish(t, c)
		h.WaitIdle("rl-table")
		peak = max(peak, ratelimit.TableLen(h.Supervisor.Shared(), "rl-table"))
	}
	if peak != capacity {
		t.Errorf("table peaked at %d entries, want the cap, %d", peak, capacity)
	}

	// A full table of open connections refuses a new address.
	for i := 100; i < 100+capacity; i++ {
		if !served(t, dialFrom(t, fmt.Sprintf("127.0.1.%d", i), addr)) {
			t.Fatalf("connection from 127.0.1.%d refused", i)
		}
	}
	if served(t, dialFrom(t, "127.0.2.1", addr)) {
		t.Fatal("a new address was served with every entry in use")
	}
	if n := ratelimit.TableLen(h.Supervisor.Shared(), "rl-table"); n != capacity {
		t.Errorf("table holds %d entries, want %d", n, capacity)
	}
	if got := rejected(h, "rl-table", "per_ip_full"); got != 1 {
		t.Errorf("rejected{reason=per_ip_full} = %d, want 1", got)
	}
}

func TestBytesPerSecond(t *testing.T) {
	if testing.Short() {
		t.Skip("takes 4.5 s")
	}
	h := newHarness(t)
	h.Apply(`
listeners:
  - name: rl-bytes
    network: tcp
    address: 127.0.0.1:0
    chain:
      - handler: ratelimit
        bytes_per_second: 100KiB
        burst_bytes: 50KiB
      - handler: echo
`)
	payload := make([]byte, 500<<10)
	_, _ = rand.Read(payload)
	c := dialFrom(t, "", h.Addr("rl-bytes"))
	start := time.Now()
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(payload)
		if err == nil {
			// Echo then finishes and closes; that half-close passes the
			// wrapper is TestThrottledForwardsHalfClose's business.
			err = c.(*net.TCPConn).CloseWrite()
		}
		werr <- err
	}()
	_ = c.SetReadDeadline(time.Now().Add(60 * time.Second))
	got, err := io.ReadAll(c)
	elapsed := time.Since(start)
	if err != nil {
		t.Fatalf("read: %v after %d bytes", err, len(got))
	}
	if err := <-werr; err != nil {
		t.Fatalf("write: %v", err)
	}
	if !bytes.Equal(got, payload) {
		t.Fatalf("got %d bytes back, not the %d sent", len(got), len(payload))
	}
	// 50 KiB at once, 450 KiB at 100 KiB/s: 4.5 s. The token bucket makes
	// it no faster; a loaded machine may make it slower.
	if elapsed < 4300*time.Millisecond || elapsed > 30*time.Second {
		t.Fatalf("500 KiB took %v; want about 4.5 s", elapsed)
	}
	t.Logf("500 KiB through 100 KiB/s in %v", elapsed)
}

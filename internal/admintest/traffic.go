package admintest

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

// EchoRoundTrip sends payload over a new connection to network/addr,
// half-closes, reads everything back up to EOF and checks it is payload.
func EchoRoundTrip(t testing.TB, network, addr string, payload []byte) {
	t.Helper()
	c, err := net.DialTimeout(network, addr, WaitBound)
	if err != nil {
		t.Fatalf("dial %s %s: %v", network, addr, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(WaitBound))
	// The writer exits once the write and half-close return: the deadline
	// above bounds both, and errc is buffered so it never blocks.
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(payload)
		if err == nil {
			err = c.(interface{ CloseWrite() error }).CloseWrite()
		}
		errc <- err
	}()
	got, rerr := io.ReadAll(c)
	if werr := <-errc; werr != nil {
		t.Fatalf("writing to %s: %v", addr, werr)
	}
	if rerr != nil {
		t.Fatalf("reading from %s: %v", addr, rerr)
	}
	if !bytes.Equal(got, payload) {
		t.Fatalf("echo from %s: got %d bytes, want %d (equal: false)", addr, len(got), len(payload))
	}
}

// Payload is n deterministic bytes.
func Payload(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + i%26)
	}
	return b
}

// Traffic is a known workload: one echo round trip per size on
// network/addr. It returns the bytes the listener must have counted each
// way.
func Traffic(t testing.TB, network, addr string, sizes ...int) float64 {
	t.Helper()
	total := 0
	for _, n := range sizes {
		EchoRoundTrip(t, network, addr, Payload(n))
		total += n
	}
	return float64(total)
}

// CheckTraffic waits for listener's connections to end, then compares
// every per-listener metric at base/metrics with the workload.
func CheckTraffic(t testing.TB, base, listener string, conns int, bytes float64) {
	t.Helper()
	var m Scrape
	WaitFor(t, listener+" connections_active back to 0", func() bool {
		m = ScrapeMetrics(t, base)
		v, _ := m.Value("sluice_connections_active", "listener", listener)
		return v == 0
	})
	if got := m.Must(t, "sluice_connections_total", "listener", listener); got != float64(conns) {
		t.Errorf("%s connections_total %v, want %d", listener, got, conns)
	}
	if got := m.Must(t, "sluice_bytes_total", "listener", listener, "direction", "in"); got != bytes {
		t.Errorf("%s bytes_total{in} %v, want %v", listener, got, bytes)
	}
	if got := m.Must(t, "sluice_bytes_total", "listener", listener, "direction", "out"); got != bytes {
		t.Errorf("%s bytes_total{out} %v, want %v", listener, got, bytes)
	}
}

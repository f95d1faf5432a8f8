package admin_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluice-dev/sluice/internal/admintest"
	"github.com/sluice-dev/sluice/pkg/chain"
	"github.com/sluice-dev/sluice/pkg/registry"
)

func TestMetricsExact(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "e.sock")
	f := newFixture(t, admintest.ConfigYAML("127.0.0.1:0",
		admintest.Listener("t", "tcp", "127.0.0.1:0"),
		admintest.Listener("u", "unix", sock)))
	base := f.url(t)
	tcpAddr, _ := f.sup.Addr("t")

	// Sizes around and well past one copy buffer, and an empty connection.
	tcpBytes := admintest.Traffic(t, "tcp", tcpAddr, 0, 1, 4096, 32*1024+1, 1<<20)
	unixBytes := admintest.Traffic(t, "unix", sock, 7, 65536)
	admintest.CheckTraffic(t, base, "t", 5, tcpBytes)
	admintest.CheckTraffic(t, base, "u", 2, unixBytes)

	// A reload that gives "t" a new generation: a connection that started
	// on the old one and ends after the reload, and one on the new one,
	// count on the same series.
	old, err := net.Dial("tcp", tcpAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if _, err := old.Write(admintest.Payload(300)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(old, make([]byte, 300)); err != nil {
		t.Fatal(err)
	}
	changed := strings.Replace(admintest.ConfigYAML("127.0.0.1:0", admintest.Listener("t", "tcp", "127.0.0.1:0"), admintest.Listener("u", "unix", sock)),
		"    network: tcp\n", "    network: tcp\n    idle_timeout: 1m\n", 1)
	f.write(t, changed)
	if sum, err := f.rl.Reload(t.Context(), "file"); err != nil || len(sum.Changed) != 1 {
		t.Fatalf("reload: %+v %v, want t changed", sum, err)
	}
	tcpBytes += admintest.Traffic(t, "tcp", tcpAddr, 1000)
	if _, err := old.Write(admintest.Payload(200)); err != nil {
		t.Fatal(err)
	}
	_ = old.(*net.TCPConn).CloseWrite()
	if rest, err := io.ReadAll(old); err != nil || len(rest) != 200 {
		t.Fatalf("old-generation connection: read %d bytes, %v; want 200", len(rest), err)
	}
	_ = old.Close()
	tcpBytes += 500
	admintest.CheckTraffic(t, base, "t", 7, tcpBytes)

	// Every sluice metric is well-formed (names, help, units).
	problems, err := testutil.GatherAndLint(f.metrics.Registry,
		"sluice_connections_total", "sluice_connections_active", "sluice_retired_connections", "sluice_bytes_total",
		"sluice_config_reloads_total", "sluice_config_last_reload_success_timestamp_seconds")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint %s: %s", p.Metric, p.Text)
	}
	// The Go and process collectors are served too.
	m := admintest.ScrapeMetrics(t, base)
	for _, name := range []string{"go_goroutines", "process_open_fds"} {
		if _, ok := m[name]; !ok {
			t.Errorf("%s missing from /metrics", name)
		}
	}
}

// sinkName is a test-only terminal handler that reads everything the
// client sends and answers sinkReply once: in and out differ, so a swap
// of the directions cannot go unnoticed the way it would with echo.
const (
	sinkName  = "test-sink"
	sinkReply = "done\n"
)

func init() {
	registry.Register(sinkName, func() any { return new(sink) })
}

type sink struct{}

func (sink) ServeStream(_ context.Context, c *chain.Conn) error {
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		c.AddIn(int64(n))
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
	}
	n, err := io.WriteString(c, sinkReply)
	c.AddOut(int64(n))
	chain.CloseWrite(c.Conn)
	return err
}

// sinkRoundTrip sends n bytes, half-closes and checks the reply.
func sinkRoundTrip(t *testing.T, addr string, n int) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(admintest.Payload(n)); err != nil {
		t.Fatal(err)
	}
	_ = c.(*net.TCPConn).CloseWrite()
	got, err := io.ReadAll(c)
	if err != nil || string(got) != sinkReply {
		t.Fatalf("sink reply %q, %v", got, err)
	}
}

// bytes_total{direction="in"} is what the client sent, "out" what it got.
func TestMetricsBytesDirection(t *testing.T) {
	yaml := strings.Replace(admintest.ConfigYAML("127.0.0.1:0", admintest.Listener("s", "tcp", "127.0.0.1:0")), "handler: echo", "handler: "+sinkName, 1)
	f := newFixture(t, yaml)
	addr, _ := f.sup.Addr("s")
	sizes := []int{10, 70000, 3}
	for _, n := range sizes {
		sinkRoundTrip(t, addr, n)
	}
	var m admintest.Scrape
	admintest.WaitFor(t, "connections_active back to 0", func() bool {
		m = admintest.ScrapeMetrics(t, f.url(t))
		v, _ := m.Value("sluice_connections_active", "listener", "s")
		return v == 0
	})
	if got := m.Must(t, "sluice_bytes_total", "listener", "s", "direction", "in"); got != 70013 {
		t.Errorf("bytes in %v, want 70013 (client to sluice)", got)
	}
	if got, want := m.Must(t, "sluice_bytes_total", "listener", "s", "direction", "out"), float64(len(sizes)*len(sinkReply)); got != want {
		t.Errorf("bytes out %v, want %v (sluice to client)", got, want)
	}
	if got := m.Must(t, "sluice_connections_total", "listener", "s"); got != 3 {
		t.Errorf("connections_total %v, want 3", got)
	}
}

// A long-lived connection's bytes show while it is open, each admintest.Scrape
// exact to the byte, and are not counted again when it closes.
func TestMetricsBytesOfOpenConnection(t *testing.T) {
	f := newFixture(t, admintest.ConfigYAML("127.0.0.1:0", admintest.Listener("e", "tcp", "127.0.0.1:0")))
	base := f.url(t)
	addr, _ := f.sup.Addr("e")
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sent := 0
	for _, n := range []int{1500, 100000, 1} {
		if _, err := c.Write(admintest.Payload(n)); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, make([]byte, n)); err != nil {
			t.Fatal(err)
		}
		sent += n
		// echo counts a write once it returned, which may be just after
		// the client read the bytes: poll rather than race it.
		var in, out float64
		admintest.WaitFor(t, fmt.Sprintf("%d bytes each way counted on the open connection", sent), func() bool {
			m := admintest.ScrapeMetrics(t, base)
			if v := m.Must(t, "sluice_connections_active", "listener", "e"); v != 1 {
				t.Fatalf("connections_active %v, want 1", v)
			}
			in = m.Must(t, "sluice_bytes_total", "listener", "e", "direction", "in")
			out = m.Must(t, "sluice_bytes_total", "listener", "e", "direction", "out")
			return in == float64(sent) && out == float64(sent)
		})
	}
	_ = c.Close()
	admintest.CheckTraffic(t, base, "e", 1, float64(sent))
}

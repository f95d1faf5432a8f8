package reload

import (
	"bufio"
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/saves"
)

// openConns is how many connections stay open through every reload of
// the latency benchmark.
const openConns = 1000

// BenchmarkReloadLatency measures what an operator waits for: from the
// config file being saved (atomically, by rename) to a new connection
// being served by the new chain, with openConns connections open the
// whole time. The watcher's debounce is part of it; p99-beyond-debounce
// is the rest (the reload itself and the detection). Run it with
// make bench-reload.
func BenchmarkReloadLatency(b *testing.B) {
	e := start(b, configYAML("10m", listenerYAML("a", "127.0.0.1:0", "bench-0")), true)
	addr := e.addr("a")
	for range openConns {
		c := dialTag(b, addr)
		if got := c.ask(b); got != "bench-0" {
			b.Fatalf("open connection answered by %q", got)
		}
	}

	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		tag := fmt.Sprintf("bench-%d", i+1)
		next := configYAML("10m", listenerYAML("a", "127.0.0.1:0", tag))
		t0 := time.Now()
		if err := saves.Rename(e.path, []byte(next)); err != nil {
			b.Fatal(err)
		}
		for servedBy(b, addr) != tag {
			if time.Since(t0) > 10*time.Second {
				b.Fatalf("reload %d not served within 10s", i+1)
			}
			time.Sleep(time.Millisecond)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()

	slices.Sort(lat)
	pct := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(pct(0.50)), "p50-ms")
	b.ReportMetric(ms(pct(0.99)), "p99-ms")
	b.ReportMetric(ms(pct(0.99)-Debounce), "p99-beyond-debounce-ms")
	b.ReportMetric(ms(lat[len(lat)-1]), "max-ms")
	if open := e.sup.Status()[0].Connections; open < openConns {
		b.Fatalf("only %d connections open at the end, want %d", open, openConns)
	}
}

// servedBy asks one new connection which chain serves it.
func servedBy(b *testing.B, addr string) string {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		b.Fatalf("dial during reload: %v", err)
	}
	tc := &tagConn{Conn: c, r: bufio.NewReader(c)}
	defer c.Close()
	return tc.ask(b)
}

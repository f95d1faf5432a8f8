//go:build linux

package main

import (
	"bytes"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
)

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{7}, 7},
	} {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
	if !math.IsNaN(median(nil)) {
		t.Error("median of nothing is not NaN")
	}
}

// TestRatioPicksBaselineByMedian: the baseline is the target with the
// better median, and the ratio is the median of per-round ratios to it,
// not to the best sample of each round.
func TestRatioPicksBaselineByMedian(t *testing.T) {
	c := newCollector()
	for _, r := range []struct{ a, b, s float64 }{
		{10, 12, 11}, // round 1: s/a = 1.1
		{10, 9, 10},  // round 2: b is cheaper this once; s/a = 1.0
		{10, 12, 12}, // round 3: s/a = 1.2
	} {
		c.add("a", map[string]float64{"cpu": r.a})
		c.add("b", map[string]float64{"cpu": r.b})
		c.add("s", map[string]float64{"cpu": r.s})
	}
	if got := c.ratio("s", []string{"a", "b"}, "cpu", true, 1); math.Abs(got-1.1) > 1e-9 {
		t.Errorf("ratio = %v, want 1.1 (against a, the lower median)", got)
	}
	// Higher is better: b has the higher median; per round s/b is
	// 11/12, 10/9 and 12/12.
	if got := c.ratio("s", []string{"a", "b"}, "cpu", false, 0); math.Abs(got-1) > 1e-9 {
		t.Errorf("ratio = %v, want 1 (against b)", got)
	}
	f := figure(c, "k", "sec", "name", "u", "cpu", true, []string{"a", "b", "s"}, ratioSpec{"s", []string{"a", "b"}, "cheaper", 1.05, 0})
	if len(f.Values) != 3 || f.Values[2].Median != 11 || f.Ratios[0].Met(true) {
		t.Errorf("figure = %+v: want medians and a missed 1.05 target", f)
	}
}

func TestPercentile(t *testing.T) {
	var xs []time.Duration
	for i := 1; i <= 1000; i++ {
		xs = append(xs, time.Duration(i))
	}
	if p := percentile(xs, 0.5); p != 500 {
		t.Errorf("p50 = %v", p)
	}
	if p := percentile(xs, 0.999); p != 999 {
		t.Errorf("p99.9 = %v", p)
	}
}

// TestCPUTime reads a child's CPU time both ways while it burns CPU: both
// grow, and they agree within the 10 ms ticks of /proc/PID/stat.
func TestCPUTime(t *testing.T) {
	cmd := exec.Command("sh", "-c", "while :; do :; done")
	if err := cmd.Start(); err != nil {
		t.Skip("no sh:", err)
	}
	p := &proc{name: "busy", cmd: cmd, done: make(chan struct{})}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	time.Sleep(300 * time.Millisecond)
	sched, err1 := p.cpuTime()
	stat, err2 := p.statTime()
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	if sched <= 0 || stat <= 0 {
		t.Fatalf("cpu time sched %v stat %v, want > 0", sched, stat)
	}
	if d := sched - stat; d < -50*time.Millisecond || d > 50*time.Millisecond {
		t.Errorf("schedstat %v and stat %v disagree", sched, stat)
	}
	if rss, err := p.rss(); err != nil || rss <= 0 {
		t.Errorf("rss = %d, %v", rss, err)
	}
}

// TestBaselinesEcho: every baseline variant echoes and honours half-close.
func TestBaselinesEcho(t *testing.T) {
	for name, serve := range variants {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			c, err := ln.(*net.TCPListener).AcceptTCP()
			if err != nil {
				return
			}
			defer c.Close()
			serve(c)
			_ = c.CloseWrite()
		}()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		payload := bytes.Repeat([]byte("0123456789abcdef"), 1<<14)
		send := payload
		if name == "pp" {
			// It echoes what follows a PROXY header.
			hdr, err := proxyproto.HeaderProxyFromAddrs(2, c.LocalAddr(), c.RemoteAddr()).Format()
			if err != nil {
				t.Fatal(err)
			}
			send = append(hdr, payload...)
		}
		if name == "hello" {
			// It echoes what follows a ClientHello.
			h, err := benchHello()
			if err != nil {
				t.Fatal(err)
			}
			send = append(append([]byte{}, h...), payload...)
		}
		go func() {
			c.Write(send)
			c.(*net.TCPConn).CloseWrite()
		}()
		got, err := io.ReadAll(c)
		want := payload
		if name == "marker" {
			want = append([]byte{'M'}, payload...)
		}
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: got %d bytes (%v), want %d", name, len(got), err, len(want))
		}
		c.Close()
		ln.Close()
	}
}

func TestReportRenders(t *testing.T) {
	c := newCollector()
	c.add(goIOCopy, map[string]float64{"cpu": 10})
	c.add(goLoop, map[string]float64{"cpu": 12})
	c.add(sluiceT, map[string]float64{"cpu": 10.2})
	res := &Results{Machine: Machine{CPU: "test"}, Rounds: 1, Commit: "abc",
		Figures: []Figure{figure(c, "echo.pingpong.cpu", "Echo ping-pong", "server CPU per ping-pong", "µs/op", "cpu", true,
			[]string{goIOCopy, goLoop, sluiceT}, ratioSpec{sluiceT, goBoth, "cheaper Go echo", 1.05, 0})}}
	out := t.TempDir() + "/b"
	if err := writeReport(res, out, ""); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(out + ".md")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| server CPU per ping-pong | µs/op | 10.0 | 12.0 | 10.2 | **1.02×** vs cheaper Go echo (target ≤ 1.05× ✅) |", "![sluice relative to its baselines](b.png)"} {
		if !bytes.Contains(md, []byte(want)) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	if png, err := os.ReadFile(out + ".png"); err != nil || !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Errorf("no PNG chart (%v)", err)
	}
}

//go:build linux

package main

import (
	"errors"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// echoServer serves the loop baseline on 127.0.0.1:0 until stop, which
// waits for every connection it served to end.
func echoServer(t *testing.T) (addr string, stop func()) {
	t.Helper()
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.AcceptTCP()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				variants["loop"](c)
				_ = c.CloseWrite()
			})
		}
	})
	return ln.Addr().String(), func() {
		_ = ln.Close()
		wg.Wait()
	}
}

// TestSections: each load runs against a real echo server, and each
// section names its figures after its key, with the ratios it was given;
// a skipped start adds no figure.
func TestSections(t *testing.T) {
	defer goleak.VerifyNone(t)
	addr, stop := echoServer(t)
	defer stop()
	e := newEnv(runOpts{rounds: 2, duration: 100 * time.Millisecond}, &Results{})
	// Direct targets (no process): the CPU figures have no values.
	start := always(func() ([]*target, error) {
		return []*target{{name: "a", addr: addr}, {name: "b", addr: addr}}, nil
	})
	rs := []ratioSpec{{"a", []string{"b"}, "b", 0, 0}}
	if err := e.connRateSection(start, "x", "conn", rs, rs); err != nil {
		t.Fatal(err)
	}
	if err := e.pingPongSection(start, "y", "pp", rs, rs); err != nil {
		t.Fatal(err)
	}
	if err := e.section(start, streamLoad, throughputMetrics, func(c *collector, ts []string) []Figure {
		return []Figure{figure(c, "z.rate", "stream", "throughput", "MB/s", "MBps", false, ts, rs...)}
	}); err != nil {
		t.Fatal(err)
	}
	skipped := func() ([]*target, bool, error) { return nil, false, nil }
	if err := e.connRateSection(skipped, "w", "skipped", rs, rs); err != nil {
		t.Fatal(err)
	}

	var keys []string
	for _, f := range e.res.Figures {
		keys = append(keys, f.Key)
		cpu := f.Key == "x.connrate.cpu" || f.Key == "y.pingpong.cpu"
		if cpu {
			if len(f.Values) != 0 {
				t.Errorf("%s: values %+v for targets with no process", f.Key, f.Values)
			}
			continue
		}
		if len(f.Values) != 2 || f.Values[0].Median <= 0 || f.Values[1].Median <= 0 {
			t.Errorf("%s: values %+v, want a positive median for a and b", f.Key, f.Values)
		}
		if len(f.Ratios) != 1 || f.Ratios[0].Subject != "a" || f.Ratios[0].Baseline != "b" {
			t.Errorf("%s: ratios %+v, want a against b", f.Key, f.Ratios)
		}
	}
	want := []string{"x.connrate.rate", "x.connrate.cpu",
		"y.pingpong.rate", "y.pingpong.p50", "y.pingpong.p99", "y.pingpong.p999", "y.pingpong.cpu",
		"z.rate"}
	if !slices.Equal(keys, want) {
		t.Errorf("figure keys %v, want %v", keys, want)
	}
}

// TestSpawnFirstError: wait returns an error one of the goroutines
// returned, and none when none did, after all of them ended.
func TestSpawnFirstError(t *testing.T) {
	defer goleak.VerifyNone(t)
	boom := errors.New("boom")
	var ran sync.Map
	_, err := spawn(8, func(i int) error {
		ran.Store(i, true)
		if i == 5 {
			return boom
		}
		return nil
	})()
	if !errors.Is(err, boom) {
		t.Errorf("err = %v, want boom", err)
	}
	for i := range 8 {
		if _, ok := ran.Load(i); !ok {
			t.Errorf("goroutine %d did not run before wait returned", i)
		}
	}
	if _, err := spawn(8, func(int) error { return nil })(); err != nil {
		t.Errorf("err = %v, want none", err)
	}
}

//go:build linux

package main

import (
	"testing"
	"time"
)

func TestParseCPUTimes(t *testing.T) {
	got, err := parseCPUTimes("cpu  1602341 5 906842 4597224 26564 0 321647 171973 0 0")
	if err != nil {
		t.Fatal(err)
	}
	if want := (cpuTimes{total: 1602341 + 5 + 906842 + 4597224 + 26564 + 321647 + 171973, steal: 171973}); got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for _, bad := range []string{"", "cpu0 1 2 3 4 5 6 7 8", "cpu 1 2 3", "cpu 1 2 3 4 5 6 7 x"} {
		if _, err := parseCPUTimes(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
	if got := (cpuTimes{total: 1000, steal: 10}).stolenUntil(cpuTimes{total: 1400, steal: 30}); got != 0.05 {
		t.Errorf("stolen %v of 400 ticks with 20 stolen, want 0.05", got)
	}
	if got := (cpuTimes{total: 1000, steal: 10}).stolenUntil(cpuTimes{total: 1000, steal: 10}); got != 0 {
		t.Errorf("stolen %v with no time passed", got)
	}
	if _, err := readCPUTimes(); err != nil {
		t.Fatalf("this machine's /proc/stat: %v", err)
	}
}

// TestRoundsRetakenForSteal plays a host that steals 10 % of the CPU time
// during some runs: those rounds are measured again, up to as many as the
// figure has, and the figure still ends with its rounds.
func TestRoundsRetakenForSteal(t *testing.T) {
	saved := cpuClock
	t.Cleanup(func() { cpuClock = saved })
	// Each run reads the clock twice; runs is the run being timed.
	var reads, runs int
	stealFrom, stealUntil := 0, 0 // runs [stealFrom, stealUntil) are stolen from
	cpuClock = func() (cpuTimes, error) {
		reads++
		if reads%2 == 1 {
			return cpuTimes{total: uint64(reads) * 1000, steal: uint64(reads) * 10}, nil
		}
		runs++
		steal := uint64(reads-1)*10 + 1 // 0.1 %
		if runs > stealFrom && runs <= stealUntil {
			steal += 100 // 10 %
		}
		return cpuTimes{total: uint64(reads) * 1000, steal: steal}, nil
	}
	run := func(string, time.Duration) (loadResult, error) {
		return loadResult{ops: 1, elapsed: time.Second}, nil
	}
	ts := []*target{{name: "a"}, {name: "b"}}
	for _, tc := range []struct {
		name              string
		from, until, want int
	}{
		{"quiet", 0, 0, 0},
		{"a stolen second run", 3, 4, 1}, // round 2's second run
		{"busy throughout", 0, 1000, 3},  // every round, until the budget ends
		{"a stolen first run", 4, 5, 1},  // round 3's first run
	} {
		t.Run(tc.name, func(t *testing.T) {
			reads, runs, stealFrom, stealUntil = 0, 0, tc.from, tc.until
			res := &Results{}
			e := newEnv(runOpts{rounds: 3, duration: time.Millisecond}, res)
			c, err := e.rounds(ts, run, connRateMetrics)
			if err != nil {
				t.Fatal(err)
			}
			if res.Retaken != tc.want {
				t.Errorf("retaken %d rounds, want %d", res.Retaken, tc.want)
			}
			for _, n := range []string{"a", "b"} {
				if got := len(c.rounds[n]); got != 3 {
					t.Errorf("%s: %d rounds kept, want 3", n, got)
				}
			}
		})
	}
}

//go:build linux

package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// cpuTimes is the first line of /proc/stat: the time all CPUs spent, in
// clock ticks, and how much of it the hypervisor gave to other guests
// (steal). The figures measure each process's own CPU time, which a
// guest kernel with steal accounting does not charge for stolen time;
// but a host busy enough to steal is one whose caches, memory bandwidth
// and hyperthread siblings are shared too, so the report says how much
// it stole while the run lasted, to read the figures' noise by.
type cpuTimes struct{ total, steal uint64 }

func readCPUTimes() (cpuTimes, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTimes{}, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return parseCPUTimes(line)
}

// parseCPUTimes reads "cpu  user nice system idle iowait irq softirq
// steal guest guest_nice": guest time is already inside user and nice.
func parseCPUTimes(line string) (cpuTimes, error) {
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return cpuTimes{}, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	var t cpuTimes
	for i, s := range f[1:9] {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return cpuTimes{}, fmt.Errorf("/proc/stat: field %d of %q: %w", i+1, line, err)
		}
		t.total += v
		if i == 7 {
			t.steal = v
		}
	}
	return t, nil
}

// cpuClock reads the machine's CPU times; a variable so that a test can
// play a host that steals.
var cpuClock = readCPUTimes

// stolenSince is the share of all CPU time stolen since start, from 0 to
// 1; 0 when it cannot be told.
func stolenSince(start cpuTimes) float64 {
	now, err := cpuClock()
	if err != nil {
		return 0
	}
	return start.stolenUntil(now)
}

func (t cpuTimes) stolenUntil(now cpuTimes) float64 {
	if now.total <= t.total || now.steal < t.steal {
		return 0
	}
	return float64(now.steal-t.steal) / float64(now.total-t.total)
}

// stealSince is stolen as the report prints it ("3.2 %"); "" when it
// cannot be told.
func stealSince(start cpuTimes) string {
	now, err := readCPUTimes()
	if err != nil || now.total <= start.total {
		return ""
	}
	return fmt.Sprintf("%.1f %%", 100*start.stolenUntil(now))
}

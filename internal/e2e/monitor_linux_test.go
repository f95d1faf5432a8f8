package e2e

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/testnet"
)

// TestMonitorStaysAwake: sluice's systemd unit sets GODEBUG so that the
// Go runtime's monitor thread stays out of its deep sleep (README: "The
// runtime's monitor thread"): idle, it then wakes every 10 ms, about 100
// context switches a second, where with Go's default it sleeps through.
// Either way sluice serves. The test runs sluice with the unit's
// environment and without it: that the setting is in the unit, and that
// this Go still honours it.
func TestMonitorStaysAwake(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test: skipped with -short")
	}
	unit, err := os.ReadFile("../../packaging/sluice.service")
	if err != nil {
		t.Fatal(err)
	}
	var env []string
	for _, line := range strings.Split(string(unit), "\n") {
		if v, ok := strings.CutPrefix(line, "Environment="); ok {
			env = append(env, strings.Fields(v)...)
		}
	}
	if !slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, "GODEBUG=schedtrace=") }) {
		t.Fatalf("the unit sets no GODEBUG=schedtrace (its environment: %q)", env)
	}
	const window = 1500 * time.Millisecond
	linked := startSluice(t, writeConfig(t, t.TempDir(), echoConfig(filepath.Join(sockDir(t), "echo.sock"), "")), env...)
	awake := idleSwitches(t, linked, window)
	testnet.MustEcho(t, dialT(t, "tcp", linked.addr("echo-tcp")), "awake\n")
	linked.stop()
	plain := startSluice(t, writeConfig(t, t.TempDir(), echoConfig(filepath.Join(sockDir(t), "echo.sock"), "")))
	asleep := idleSwitches(t, plain, window)
	testnet.MustEcho(t, dialT(t, "tcp", plain.addr("echo-tcp")), "asleep\n")
	t.Logf("context switches in %v idle: %d with the unit's environment (%s), %d without", window, awake, strings.Join(env, " "), asleep)
	// 150 expected; a loaded machine delays the wake-ups but does not
	// drop two thirds of them.
	if awake < 50 {
		t.Errorf("with the unit's environment: %d context switches in %v idle, want the monitor's ~150", awake, window)
	}
	if asleep >= awake/3 {
		t.Errorf("without it: %d context switches against %d", asleep, awake)
	}
}

// idleSwitches counts the context switches of p's threads over d, once p
// has settled after its start.
func idleSwitches(t *testing.T, p *proc, d time.Duration) int {
	t.Helper()
	time.Sleep(200 * time.Millisecond)
	before := switches(t, p.cmd.Process.Pid)
	time.Sleep(d)
	return switches(t, p.cmd.Process.Pid) - before
}

// switches sums voluntary and involuntary context switches over pid's
// threads.
func switches(t *testing.T, pid int) int {
	t.Helper()
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	if err != nil || len(tasks) == 0 {
		t.Fatalf("threads of %d: %v", pid, err)
	}
	n := 0
	for _, path := range tasks {
		f, err := os.Open(path)
		if err != nil {
			continue // the thread ended
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.HasSuffix(k, "ctxt_switches") {
				c, _ := strconv.Atoi(strings.TrimSpace(v))
				n += c
			}
		}
		_ = f.Close()
	}
	return n
}

//go:build linux

package main

import (
	"fmt"
	"os"
	"strings"
	"time"
)

// Names of the echo targets, as they appear in the report.
const (
	goIOCopy = "go-iocopy"
	goLoop   = "go-loop"
	sluiceT  = "sluice"
	// tokioT is the Tokio echo server sluice began as (tokio-echo/).
	tokioT = "tokio"
)

var goBoth = []string{goIOCopy, goLoop}

// configHeader starts every config sluice is measured on: quiet logs, and
// a drain long enough that no measured connection is ever cut.
const configHeader = `log:
  level: warn
shutdown:
  drain_timeout: 5m
listeners:
`

// sluiceEchoConfig is the config sluice is measured on: one echo listener
// with the idle_timeout of config.example.yaml, logging only warnings.
const sluiceEchoConfig = configHeader + `  - name: echo
    network: tcp
    address: %s
    idle_timeout: 5m
    chain:
      - handler: echo
`

func (e *env) startSluiceEcho() (*target, error) { return e.startSluiceEchoAs(sluiceT, e.o.sluice) }

// startSluiceEchoAs runs the sluice binary bin as target name on the echo
// config.
func (e *env) startSluiceEchoAs(name, bin string) (*target, error) {
	return e.startSluiceOn(name, bin, name+"-echo.yaml", nil, func(addr string) []byte {
		return fmt.Appendf(nil, sluiceEchoConfig, addr)
	})
}

// echoTargets starts the two baselines and sluice, all on the server CPU.
func (e *env) echoTargets() ([]*target, error) {
	a, err := e.startGo(goIOCopy, "iocopy", serverCPU)
	if err != nil {
		return nil, err
	}
	b, err := e.startGo(goLoop, "loop", serverCPU)
	if err != nil {
		return nil, err
	}
	s, err := e.startSluiceEcho()
	if err != nil {
		return nil, err
	}
	ts := []*target{a, b, s}
	if t, err := e.startTokio(); err != nil {
		return nil, err
	} else if t != nil {
		ts = append(ts, t)
	}
	if e.o.compare != "" {
		c, err := e.startSluiceEchoAs(compareT, e.o.compare)
		if err != nil {
			return nil, err
		}
		ts = append(ts, c)
	}
	return ts, nil
}

// startTokio starts the Tokio echo baseline on the server CPU, or returns
// nil, with a note once, when it was not built.
func (e *env) startTokio() (*target, error) {
	if _, err := os.Stat(e.o.tokio); err != nil {
		if !e.tokioNoted {
			e.tokioNoted = true
			e.note("Tokio comparison skipped: %s not built (make bench builds it with cargo from Debian's librust-tokio-dev: apt-get install cargo librust-tokio-dev)", e.o.tokio)
		}
		return nil, nil
	}
	p, out, err := startProc(tokioT, serverCPU, e.logPath(tokioT), e.o.tokio, "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	e.procs = append(e.procs, p)
	line, err := out.ReadString('\n')
	if err != nil {
		return nil, fmt.Errorf("%s: reading its address: %w", tokioT, err)
	}
	t := &target{name: tokioT, addr: strings.TrimSpace(line), proc: p}
	return t, waitReady(p, t.addr)
}

// compareT is the target name of the -compare binary: another build of
// sluice measured in the same rounds, to A/B a change.
const compareT = "sluice-compare"

// withCompare adds, under -compare, a ratio of sluice to the other build.
func (e *env) withCompare(rs []ratioSpec) []ratioSpec {
	if e.o.compare == "" || len(rs) == 0 {
		return rs
	}
	return append(rs, ratioSpec{sluiceT, []string{compareT}, "the -compare build", 0, 0})
}

// rounds warms every target up, then measures them in turn, round after
// round, rotating the order. A round during one of whose runs the host
// stole more than stealLimit of the CPU time is taken again: the ratios
// are per round, and a burst of steal that hits one target's second and
// not another's skews its round. A figure takes at most as many rounds
// again as it has, so that a host busy throughout still lets the run end
// (the report's steal row then says how busy it was). The retake is
// decided by the host's steal alone, never by the figures.
func (e *env) rounds(ts []*target, run func(string, time.Duration) (loadResult, error), metrics func(loadResult, time.Duration) map[string]float64) (*collector, error) {
	for _, t := range ts {
		if _, err := run(t.addr, e.o.duration/4); err != nil {
			return nil, fmt.Errorf("warm-up %s: %w", t.name, err)
		}
	}
	c := newCollector()
	retakes := 0
	for r := 0; r < e.o.rounds; r++ {
		order := rotate(ts, r)
		ms := make([]map[string]float64, len(order))
		worst, worstT := 0.0, ""
		for i, t := range order {
			start, stealErr := cpuClock()
			res, cpu, err := measure(t, func(addr string) (loadResult, error) { return run(addr, e.o.duration) })
			if err != nil {
				return nil, err
			}
			if stealErr == nil {
				if s := stolenSince(start); s > worst {
					worst, worstT = s, t.name
				}
			}
			ms[i] = metrics(res, cpu)
		}
		if worst > stealLimit && retakes < e.o.rounds {
			retakes++
			e.res.Retaken++
			logf("  round %d taken again: the host stole %.0f %% of the CPU time during %s's run", r+1, 100*worst, worstT)
			r--
			continue
		}
		for i, t := range order {
			c.add(t.name, ms[i])
			logf("  round %d %-16s %s", r+1, t.name, fmtMetrics(ms[i]))
		}
	}
	return c, nil
}

// stealLimit is the share of all CPU time stolen by the host during one
// target's run above which its round is taken again; a quiet host steals
// under 1 %, a busy one 5 to 30 %.
const stealLimit = 0.05

func fmtMetrics(m map[string]float64) string {
	s := ""
	for _, k := range []string{"MBps", "cpu_ms_per_GB", "rate", "p50", "p99", "p999", "cpu_us_per_op", "cpu_us_per_conn", "per_cpu_s"} {
		if v, ok := m[k]; ok {
			s += fmt.Sprintf(" %s=%.4g", k, v)
		}
	}
	return s
}

func names(ts []*target) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.name
	}
	return out
}

func echoThroughput(e *env) error {
	const sec = "Echo throughput (10 connections, 16 KiB writes)"
	return e.section(always(e.echoTargets), streamLoad, throughputMetrics, func(c *collector, ts []string) []Figure {
		return []Figure{
			figure(c, "echo.throughput.rate", sec, "throughput", "MB/s", "MBps", false, ts,
				e.withCompare([]ratioSpec{{sluiceT, goBoth, "better Go echo", 0, 0}})...),
			figure(c, "echo.throughput.cpu", sec, "server CPU per GB echoed", "ms/GB", "cpu_ms_per_GB", true, ts,
				e.withCompare([]ratioSpec{{sluiceT, goBoth, "cheaper Go echo", 1.05, 0}, {sluiceT, []string{tokioT}, "Tokio echo", 1.0, 0}})...),
		}
	})
}

func echoPingPong(e *env) error {
	return e.pingPongSection(always(e.echoTargets), "echo", "Echo ping-pong (20 connections, 64-byte messages)",
		e.withCompare([]ratioSpec{{sluiceT, goBoth, "better Go echo", 0, 0}}),
		e.withCompare([]ratioSpec{{sluiceT, goBoth, "cheaper Go echo", 1.05, 0}, {sluiceT, []string{tokioT}, "Tokio echo", 0.95, 0}}))
}

func echoConnRate(e *env) error {
	return e.connRateSection(always(e.echoTargets), "echo", "Connection rate (connect, one 64-byte round trip, close; 4 clients)",
		e.withCompare([]ratioSpec{{sluiceT, goBoth, "better Go echo", 0, 0}}),
		e.withCompare([]ratioSpec{{sluiceT, goBoth, "cheaper Go echo", 0, 0}}))
}

// idleMsg is the round trip each idle connection makes before going quiet:
// as large as sluice's copy buffer, so that a buffer a server keeps per
// connection is one it has written to, and so resident, as it would be
// after real traffic.
const idleMsg = 32 << 10

// idleRSS measures each server's resident memory per idle connection: a
// fresh process, one round trip to warm it, its RSS, then n connections
// that each made one idleMsg round trip and went quiet, and its RSS again.
func idleRSS(e *env) error {
	n := e.o.idleN
	// An idle io.Copy connection holds its splice pipe: three descriptors.
	nCopy := n
	if limit := int(e.nofile) - 512; 3*n > limit {
		nCopy = limit / 3
		e.note("go-iocopy held %d idle connections, not %d: RLIMIT_NOFILE is %d here (raising it needs CAP_SYS_RESOURCE) and an idle io.Copy connection takes three descriptors (its socket and a splice pipe)", nCopy, n, e.nofile)
	}
	c := newCollector()
	starts := []struct {
		n     int
		start func() (*target, error)
	}{
		{nCopy, func() (*target, error) { return e.startGo(goIOCopy, "iocopy", serverCPU) }},
		{n, func() (*target, error) { return e.startGo(goLoop, "loop", serverCPU) }},
		{n, e.startSluiceEcho},
	}
	var order []string
	for _, st := range starts {
		n := st.n
		t, err := st.start()
		if err != nil {
			return err
		}
		order = append(order, t.name)
		if _, err := pingPong(t.addr, 1, 64, 50*time.Millisecond); err != nil {
			return err
		}
		time.Sleep(200 * time.Millisecond)
		before, err := t.proc.rss()
		if err != nil {
			return err
		}
		cs, err := openIdle(t.addr, n, idleMsg)
		if err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
		// Let every connection's goroutine reach its idle wait.
		time.Sleep(time.Second)
		after, err := t.proc.rss()
		closeAll(cs)
		if err != nil {
			return err
		}
		kib := float64(after-before) / 1024 / float64(n)
		c.add(t.name, map[string]float64{"kib": kib})
		logf("  %-16s RSS %d KiB -> %d KiB: %.2f KiB per connection", t.name, before>>10, after>>10, kib)
		e.stopAll()
	}
	f := figure(c, "idle.rss", fmt.Sprintf("Memory (%d idle connections)", n), "RSS per idle connection", "KiB", "kib", true, order,
		ratioSpec{sluiceT, goBoth, "leaner Go echo", 0, 0})
	f.Limit = 12
	e.res.Figures = append(e.res.Figures, f)
	return nil
}

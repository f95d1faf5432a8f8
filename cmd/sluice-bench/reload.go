//go:build linux

package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// The reload figures: time from SIGHUP (and, separately, from a config
// file save) to a new chain serving, on a sluice holding n open
// connections, against the same sluice holding none.
//
// Each reload changes the listener that holds the connections (its
// idle_timeout, so its generation with every open connection retires) and
// a probe listener whose change can be seen from outside: when sluice has
// the proxy handler, the probe's chain flips between echo and a proxy to
// an upstream that greets with 'M'; otherwise the probe moves to a new
// port. The harness polls the probe until the new chain answers.

const reloadConfig = configHeader + `  - name: echo
    network: tcp
    address: %s
    idle_timeout: %s
    chain:
      - handler: echo
  - name: probe
    network: tcp
    address: %s
    chain:
%s`

type reloadTarget struct {
	t      *target
	cfg    string
	echo   string
	probe  string
	marker string // upstream address; "" when the probe moves instead
	gen    int
	conns  []*net.TCPConn
}

// write writes generation gen of the config atomically (rename), the way
// editors and config management do.
func (rt *reloadTarget) write() error {
	idle := "5m"
	chain := "      - handler: echo\n"
	if rt.gen%2 == 1 {
		idle = "6m"
		if rt.marker != "" {
			chain = fmt.Sprintf("      - handler: proxy\n        upstreams: [\"tcp://%s\"]\n", rt.marker)
		}
	}
	body := fmt.Sprintf(reloadConfig, rt.echo, idle, rt.probe, chain)
	tmp := rt.cfg + ".tmp"
	if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, rt.cfg)
}

// reload writes the next generation, sends SIGHUP when signal is set, and
// returns how long it took until a fresh connection to the probe was
// served by the new chain.
func (rt *reloadTarget) reload(signal bool) (time.Duration, error) {
	rt.gen++
	if rt.marker == "" {
		addr, err := freePort()
		if err != nil {
			return 0, err
		}
		rt.probe = addr
	}
	if err := rt.write(); err != nil {
		return 0, err
	}
	start := time.Now()
	if signal {
		if err := syscall.Kill(rt.t.proc.pid(), syscall.SIGHUP); err != nil {
			return 0, err
		}
	}
	want := byte('e')
	if rt.marker != "" && rt.gen%2 == 1 {
		want = 'M'
	}
	deadline := start.Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if got, err := probeOnce(rt.probe); err == nil && got == want {
			return time.Since(start), nil
		}
		time.Sleep(100 * time.Microsecond)
	}
	return 0, fmt.Errorf("%s: the reload did not take effect within 10s; log ends: %s", rt.t.name, rt.t.proc.tail())
}

// probeOnce connects, sends one byte and returns the first byte back.
func probeOnce(addr string) (byte, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte{'e'}); err != nil {
		return 0, err
	}
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return 0, err
	}
	return b[0], nil
}

func (e *env) startReloadTarget(name, marker string, conns int, args []string) (*reloadTarget, error) {
	echo, err := freePort()
	if err != nil {
		return nil, err
	}
	probe, err := freePort()
	if err != nil {
		return nil, err
	}
	rt := &reloadTarget{cfg: e.path(name + ".yaml"), echo: echo, probe: probe, marker: marker}
	if err := rt.write(); err != nil {
		return nil, err
	}
	if rt.t, err = e.startSluiceArgs(name, e.o.sluice, rt.cfg, echo, args...); err != nil {
		return nil, err
	}
	if conns > 0 {
		if rt.conns, err = openIdle(echo, conns, 64); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	return rt, nil
}

func reloadLatency(e *env) error {
	marker := ""
	probe := e.path("probe-check.yaml")
	if err := os.WriteFile(probe, fmt.Appendf(nil, reloadConfig, "127.0.0.1:1", "5m", "127.0.0.1:2",
		"      - handler: proxy\n        upstreams: [\"tcp://127.0.0.1:3\"]\n"), 0o644); err != nil {
		return err
	}
	if has, _ := e.sluiceHas(probe); has {
		up, err := e.startGo("marker", "marker", loadCPU)
		if err != nil {
			return err
		}
		marker = up.addr
	} else {
		e.note("reload probe: no proxy handler in this build, so each reload moves a probe listener to a new port and the harness polls it; with the proxy handler the probe's chain flips between echo and proxy instead")
	}
	// SIGHUP with the file watcher off, so that only the signal reloads;
	// then, where sluice has a watcher, the save alone (its debounce
	// included).
	watch := e.sluiceWatches()
	triggers := []reloadTrigger{{"signal", "SIGHUP", false}}
	if watch {
		triggers = append(triggers, reloadTrigger{"file", "file save", true})
	} else {
		e.note("reload by file save not measured: this sluice build has no --watch flag")
	}
	for _, tr := range triggers {
		if err := e.reloadRounds(tr, marker, watch); err != nil {
			return err
		}
		e.stopReloadTargets()
	}
	return nil
}

type reloadTrigger struct {
	key, what string
	file      bool // the save reloads; no SIGHUP
}

// reloadRounds measures one trigger on a sluice holding no connection and
// one holding reloadN, alternately.
func (e *env) reloadRounds(tr reloadTrigger, marker string, hasWatch bool) error {
	n := e.o.reloadN
	var args []string
	if hasWatch && !tr.file {
		args = []string{"--watch=false"}
	}
	zero, err := e.startReloadTarget("sluice-idle", marker, 0, args)
	if err != nil {
		return err
	}
	loaded, err := e.startReloadTarget(fmt.Sprintf("sluice-%dconns", n), marker, n, args)
	if err != nil {
		return err
	}
	defer closeAll(loaded.conns)
	c := newCollector()
	rts := []*reloadTarget{zero, loaded}
	for r := range 2 * e.o.rounds {
		for i := range rts {
			rt := rts[(i+r)%2]
			d, err := rt.reload(!tr.file)
			if err != nil {
				return err
			}
			c.add(rt.t.name, map[string]float64{"ms": float64(d) / 1e6})
			logf("  reload %d %-24s %.2f ms", r+1, rt.t.name, float64(d)/1e6)
			// Past the watcher's debounce, so that no reload of this
			// round runs into the next.
			time.Sleep(250 * time.Millisecond)
		}
	}
	// The held connections must have survived every reload.
	for i, cn := range loaded.conns {
		if err := roundTrip(cn); err != nil {
			return fmt.Errorf("held connection %d did not survive the reloads: %w", i, err)
		}
	}
	sec := fmt.Sprintf("Reload by %s (until a fresh connection is served by the new chain; %d rounds)", tr.what, 2*e.o.rounds)
	e.res.Figures = append(e.res.Figures,
		figure(c, "reload."+tr.key, sec, fmt.Sprintf("reload latency, %d connections open", n), "ms", "ms", true,
			[]string{zero.t.name, loaded.t.name},
			ratioSpec{loaded.t.name, []string{zero.t.name}, "no connections open", 0, 0}))
	return nil
}

// stopReloadTargets stops the sluice processes of a trigger's rounds, but
// not the marker upstream, which the next trigger uses too.
func (e *env) stopReloadTargets() {
	var keep []*proc
	for _, p := range e.procs {
		if p.name == "marker" {
			keep = append(keep, p)
			continue
		}
		p.stop()
	}
	e.procs = keep
}

// sluiceWatches reports whether the sluice binary has the --watch flag.
func (e *env) sluiceWatches() bool {
	out, _ := exec.Command(e.o.sluice, "run", "--help").CombinedOutput()
	return strings.Contains(string(out), "--watch")
}

func roundTrip(c *net.TCPConn) error {
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write([]byte("x")); err != nil {
		return err
	}
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return err
	}
	if b[0] != 'x' {
		return errors.New("wrong byte echoed")
	}
	return nil
}

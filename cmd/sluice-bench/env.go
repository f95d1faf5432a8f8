//go:build linux

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// A target is one server under measurement: a baseline, sluice, HAProxy,
// or (proc nil) a direct connection to an upstream whose CPU time is not
// the point.
type target struct {
	name string
	addr string
	proc *proc
}

// env is the state of one run: options, results, and the servers of the
// section now running.
type env struct {
	o     runOpts
	res   *Results
	procs []*proc
	seq   int
	// nofile is RLIMIT_NOFILE of the harness and its servers.
	nofile uint64
	// tokioNoted is set once the missing Tokio baseline was noted.
	tokioNoted bool
	// unit is the environment sluice's systemd unit sets (useUnitEnv).
	unit []string
}

func newEnv(o runOpts, res *Results) *env { return &env{o: o, res: res} }

func (e *env) stopAll() {
	for _, p := range e.procs {
		p.stop()
	}
	e.procs = nil
}

func (e *env) note(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	logf("note: %s", msg)
	for _, n := range e.res.Notes {
		if n == msg {
			return
		}
	}
	e.res.Notes = append(e.res.Notes, msg)
}

func (e *env) logPath(name string) string {
	e.seq++
	return e.path(fmt.Sprintf("%02d-%s.log", e.seq, name))
}

// startGo starts a baseline server of the given variant on cpu.
func (e *env) startGo(name, variant string, cpu int, extra ...string) (*target, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	argv := append([]string{self, "serve", "-variant", variant, "-addr", "127.0.0.1:0"}, extra...)
	argv = append(argv, e.profFlags(name)...)
	p, out, err := startProc(name, cpu, e.logPath(name), argv...)
	if err != nil {
		return nil, err
	}
	e.procs = append(e.procs, p)
	line, err := out.ReadString('\n')
	if err != nil {
		return nil, fmt.Errorf("%s: reading its address: %w", name, err)
	}
	t := &target{name: name, addr: strings.TrimSpace(line), proc: p}
	return t, waitReady(p, t.addr)
}

// startSluiceArgs runs bin on cfgPath with extra run flags.
func (e *env) startSluiceArgs(name, bin, cfgPath, addr string, extra ...string) (*target, error) {
	return e.startSluiceFull(name, bin, cfgPath, addr, nil, extra...)
}

// startSluiceFull runs bin on cfgPath with env (KEY=VALUE) added to its
// environment and extra run flags.
func (e *env) startSluiceFull(name, bin, cfgPath, addr string, env []string, extra ...string) (*target, error) {
	argv := append([]string{bin, "run", "-c", cfgPath}, extra...)
	// Only the build under test runs in-process for profiling; a -compare
	// build is a binary of its own.
	if e.o.profile != "" && bin == e.o.sluice {
		self, err := os.Executable()
		if err != nil {
			return nil, err
		}
		argv = append([]string{self, "sluice", "-c", cfgPath}, e.profFlags(name)...)
	}
	env = append(append([]string(nil), e.unit...), env...)
	if len(env) > 0 {
		// env(1) execs the server in its place: the measured PID is
		// the server's.
		argv = append(append([]string{"env"}, env...), argv...)
	}
	return e.startServer(name, addr, argv...)
}

// unitFile is sluice's systemd unit, relative to the repository's root
// (where make bench runs the harness).
const unitFile = "packaging/sluice.service"

// useUnitEnv makes every sluice run with the environment its systemd unit
// sets (Environment= lines), as the package runs it, and notes which.
func (e *env) useUnitEnv(path string) {
	b, err := os.ReadFile(path)
	if err != nil {
		e.note("sluice runs with the harness's environment: %v", err)
		return
	}
	e.unit = unitEnvironment(string(b))
	if len(e.unit) > 0 {
		e.note("sluice runs with the environment of its systemd unit (%s): %s", path, strings.Join(e.unit, " "))
	}
}

// unitEnvironment is the KEY=VALUE assignments of a unit's Environment=
// lines (unquoted ones: what sluice's unit uses).
func unitEnvironment(unit string) []string {
	var env []string
	for _, line := range strings.Split(unit, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "Environment="); ok {
			env = append(env, strings.Fields(v)...)
		}
	}
	return env
}

// startServer runs argv on the server CPU as target name and waits until
// it accepts connections on addr.
func (e *env) startServer(name, addr string, argv ...string) (*target, error) {
	p, _, err := startProc(name, serverCPU, e.logPath(name), argv...)
	if err != nil {
		return nil, err
	}
	e.procs = append(e.procs, p)
	if err := waitReady(p, addr); err != nil {
		return nil, fmt.Errorf("%w; its log ends: %s", err, p.tail())
	}
	return &target{name: name, addr: addr, proc: p}, nil
}

// sluiceConfig makes a config for the listen address addr.
type sluiceConfig func(addr string) []byte

// startSluiceOn runs bin as target name on the config cfg makes for a
// free address, written to file, with env added to its environment.
func (e *env) startSluiceOn(name, bin, file string, env []string, cfg sluiceConfig) (*target, error) {
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	path := e.path(file)
	if err := os.WriteFile(path, cfg(addr), 0o644); err != nil {
		return nil, err
	}
	return e.startSluiceFull(name, bin, path, addr, env)
}

// sluiceAccepts reports whether this sluice build accepts the config cfg
// makes, which tells whether it has handler; when not, it notes that the
// figures named what are skipped.
func (e *env) sluiceAccepts(what, handler string, cfg sluiceConfig) (bool, error) {
	// validate binds nothing: any address does for this probe.
	probe := e.path("sluice-" + handler + "-probe.yaml")
	if err := os.WriteFile(probe, cfg("127.0.0.1:1"), 0o644); err != nil {
		return false, err
	}
	has, out := e.sluiceHas(probe)
	if !has {
		e.note("%s figures skipped: this sluice build does not accept a %s listener (%s)", what, handler, firstLine(out))
	}
	return has, nil
}

// startHAProxy runs HAProxy in TCP mode with one thread in front of
// upstream, with or without option splice-auto.
func (e *env) startHAProxy(name, upstream string, splice bool) (*target, error) {
	return e.startHAProxyWith(name, upstream, splice, "", "")
}

// haproxyHeader starts every HAProxy config: one thread, TCP mode, and
// timeouts no measured connection reaches; its %d is maxconn.
const haproxyHeader = `global
    nbthread 1
    maxconn %d
defaults
    mode tcp
    timeout connect 5s
    timeout client 5m
    timeout server 5m
`

// startHAProxyWith adds bindOpt to the bind line and serverOpt to the
// server line (accept-proxy, send-proxy-v2).
func (e *env) startHAProxyWith(name, upstream string, splice bool, bindOpt, serverOpt string) (*target, error) {
	opt := ""
	if splice {
		opt = "    option splice-auto\n"
	}
	return e.startHAProxyConfig(name, func(addr string, maxconn int) string {
		return fmt.Sprintf(haproxyHeader+`listen bench
    bind %s %s
%s    server up %s %s
`, maxconn, addr, bindOpt, opt, upstream, serverOpt)
	})
}

// startHAProxyConfig runs HAProxy as target name on the config cfg
// returns for its listen address and maxconn.
func (e *env) startHAProxyConfig(name string, cfg func(addr string, maxconn int) string) (*target, error) {
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	// HAProxy refuses to start when maxconn needs more descriptors than
	// RLIMIT_NOFILE allows: two sockets per proxied connection, and with
	// splice-auto its pipes on top.
	maxconn := min(50000, (int(e.nofile)-200)/4)
	path := e.path(name + ".cfg")
	if err := os.WriteFile(path, []byte(cfg(addr, maxconn)), 0o644); err != nil {
		return nil, err
	}
	// -db: stay in the foreground, no daemon, no master process, so the
	// PID is the one process doing the work.
	return e.startServer(name, addr, e.o.haproxy, "-db", "-f", path)
}

// haveHAProxy reports whether the haproxy binary can be run.
func (e *env) haveHAProxy() bool {
	_, err := exec.LookPath(e.o.haproxy)
	return err == nil
}

// sluiceHas reports whether the sluice binary accepts cfgPath, which tells
// whether a handler (proxy) exists in this build.
func (e *env) sluiceHas(cfgPath string) (bool, string) {
	out, err := exec.Command(e.o.sluice, "validate", "-c", cfgPath).CombinedOutput()
	return err == nil, strings.TrimSpace(string(out))
}

// measure runs one scenario against t and reads t's CPU time around it.
// cpu is -1 when t has no process of its own (a direct connection).
func measure(t *target, run func(addr string) (loadResult, error)) (loadResult, time.Duration, error) {
	var before time.Duration
	var err error
	if t.proc != nil {
		if before, err = t.proc.cpuTime(); err != nil {
			return loadResult{}, 0, err
		}
	}
	r, err := run(t.addr)
	if err != nil {
		return r, 0, fmt.Errorf("%s: %w", t.name, err)
	}
	if t.proc == nil {
		return r, -1, nil
	}
	after, err := t.proc.cpuTime()
	if err != nil {
		return r, 0, err
	}
	return r, after - before, nil
}

// rotate returns ts starting at round r, so that no target is always
// measured first (right after a quiet moment) or last.
func rotate(ts []*target, r int) []*target {
	out := make([]*target, 0, len(ts))
	for i := range ts {
		out = append(out, ts[(i+r)%len(ts)])
	}
	return out
}

// profFlags asks a server started by the harness for profiles, when -profile
// is set.
func (e *env) profFlags(name string) []string {
	if e.o.profile == "" {
		return nil
	}
	return []string{
		"-cpuprofile", filepath.Join(e.o.profile, name+".cpu.pprof"),
		"-memprofile", filepath.Join(e.o.profile, name+".heap.pprof"),
	}
}

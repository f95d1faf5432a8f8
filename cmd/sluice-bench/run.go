//go:build linux

package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// runOpts are the run command's flags.
type runOpts struct {
	sluice   string
	rounds   int
	duration time.Duration
	only     string
	out      string
	haproxy  string
	idleN    int
	reloadN  int
	before   string
	profile  string
	compare  string
	tokio    string
	workdir  string
	// nginx and nginxStream are the nginx binary and its stream module
	// (Debian's libnginx-mod-stream), for the TLS comparison.
	nginx       string
	nginxStream string
}

// loadCPU and serverCPU are where the load generator and the servers run.
const (
	serverCPU = 0
	loadCPU   = 1
)

func runCmd(args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	var o runOpts
	fs.StringVar(&o.sluice, "sluice", "bin/sluice", "the sluice binary to measure")
	fs.IntVar(&o.rounds, "rounds", 7, "rounds per figure; the median is reported")
	fs.DurationVar(&o.duration, "duration", time.Second, "length of one measured run")
	fs.StringVar(&o.only, "only", "", "comma-separated scenarios to run (echo-throughput, echo-pingpong, echo-connrate, idle, proxy-throughput, proxy-pingpong, proxy-connrate, pp-connrate, pp-pingpong, route-connrate, route-pingpong, tls-handshake, tls-bulk, reload, upgrade); empty: all")
	fs.StringVar(&o.out, "out", "docs/benchmarks", "report path without extension: writes .md, .json and .png")
	fs.StringVar(&o.haproxy, "haproxy", "haproxy", "the haproxy binary; the HAProxy comparison is skipped when it is missing")
	fs.StringVar(&o.nginx, "nginx", "nginx", "the nginx binary for the TLS comparison; skipped when it is missing")
	fs.StringVar(&o.nginxStream, "nginx-stream-module", "/usr/lib/nginx/modules/ngx_stream_module.so", "nginx's stream module, loaded when the file exists")
	fs.IntVar(&o.idleN, "idle-conns", 10000, "connections held open for the RSS figure")
	fs.IntVar(&o.reloadN, "reload-conns", 1000, "connections held open during the reload figure")
	fs.StringVar(&o.before, "before", "", "a results JSON file from an earlier run, shown as the 'before' column")
	fs.StringVar(&o.tokio, "tokio", "bin/tokio-echo", "the Tokio echo baseline (cmd/sluice-bench/tokio-echo, built by make bench); skipped with a note when missing")
	fs.StringVar(&o.compare, "compare", "", "another sluice binary to measure in the same rounds as sluice-compare (A/B a change; echo and proxy figures)")
	fs.StringVar(&o.profile, "profile", "", "run sluice in-process (sluice-bench sluice) and write CPU and heap profiles of every server into this directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.profile != "" {
		if err := os.MkdirAll(o.profile, 0o755); err != nil {
			return err
		}
	}
	if err := pinSelf(); err != nil {
		return err
	}
	nofile, err := raiseNoFile()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "sluice-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	o.workdir = dir

	started := time.Now()
	cpuAtStart, cpuErr := readCPUTimes()
	res := &Results{Machine: machine(), Rounds: o.rounds, Duration: o.duration.String()}
	env := newEnv(o, res)
	env.nofile = nofile
	env.useUnitEnv(unitFile)
	defer env.stopAll()
	for _, sec := range sections {
		if !o.want(sec.name) {
			continue
		}
		logf("== %s", sec.name)
		if err := sec.run(env); err != nil {
			return fmt.Errorf("%s: %w", sec.name, err)
		}
		env.stopAll()
	}
	res.Elapsed = time.Since(started).Round(time.Second).String()
	if cpuErr == nil {
		res.Machine.Steal = stealSince(cpuAtStart)
	}
	logf("== done in %s", res.Elapsed)
	return writeReport(res, o.out, o.before)
}

// sections run in this order; each starts and stops its own servers.
var sections = []struct {
	name string
	run  func(*env) error
}{
	{"echo-throughput", echoThroughput},
	{"echo-pingpong", echoPingPong},
	{"echo-connrate", echoConnRate},
	{"idle", idleRSS},
	{"proxy-throughput", proxyThroughput},
	{"proxy-pingpong", proxyPingPong},
	{"proxy-connrate", proxyConnRate},
	{"pp-connrate", ppConnRate},
	{"pp-pingpong", ppPingPong},
	{"route-connrate", routeConnRate},
	{"route-pingpong", routePingPong},
	{"tls-handshake", tlsHandshakeFigures},
	{"tls-bulk", tlsBulkFigures},
	{"reload", reloadLatency},
	{"upgrade", upgradeLatency},
}

func (o runOpts) want(name string) bool {
	if o.only == "" {
		return true
	}
	for _, s := range strings.Split(o.only, ",") {
		if s = strings.TrimSpace(s); s != "" && strings.HasPrefix(name, s) {
			return true
		}
	}
	return false
}

// pinSelf re-executes the harness under taskset on the load CPU unless it
// already runs there alone: the servers it starts get the other CPU.
func pinSelf() error {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return fmt.Errorf("sched_getaffinity: %w", err)
	}
	if set.Count() == 1 && set.IsSet(loadCPU) {
		return nil
	}
	if runtime.NumCPU() < 2 && set.Count() < 2 {
		return fmt.Errorf("the benchmark needs 2 CPUs (one for the servers, one for the load); this process may use %d", set.Count())
	}
	if os.Getenv("SLUICE_BENCH_PINNED") != "" {
		return fmt.Errorf("taskset did not pin the harness to CPU %d", loadCPU)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	tk, err := exec.LookPath("taskset")
	if err != nil {
		return fmt.Errorf("taskset (util-linux) is needed to pin processes to CPUs: %w", err)
	}
	env := append(os.Environ(), "SLUICE_BENCH_PINNED=1")
	argv := append([]string{"taskset", "-c", fmt.Sprint(loadCPU), self}, os.Args[1:]...)
	return syscall.Exec(tk, argv, env)
}

// raiseNoFile lifts RLIMIT_NOFILE for the harness and, by inheritance, the
// servers it starts: the RSS figure holds 10,000 connections, and io.Copy's
// splice pipes take two more descriptors per busy connection.
func raiseNoFile() (uint64, error) {
	const want = 200_000
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	if lim.Cur >= want {
		return lim.Cur, nil
	}
	lim.Cur = want
	if lim.Max < want {
		lim.Max = want // needs CAP_SYS_RESOURCE; fall back below
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return 0, fmt.Errorf("raising RLIMIT_NOFILE: %w", err)
		}
		logf("note: RLIMIT_NOFILE stays at %d: raising the hard limit needs CAP_SYS_RESOURCE", lim.Cur)
	}
	return lim.Cur, nil
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05 ")+format+"\n", args...)
}

// machine describes where the run happened.
func machine() Machine {
	m := Machine{
		Date:   time.Now().UTC().Format("2006-01-02 15:04 MST"),
		Go:     runtime.Version(),
		OS:     runtime.GOOS + "/" + runtime.GOARCH,
		CPUs:   onlineCPUs(),
		CPU:    "unknown",
		Kernel: "unknown",
	}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "model name"); ok {
				m.CPU = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
		_ = f.Close()
	}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		m.Kernel = unix.ByteSliceToString(u.Release[:])
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		m.LoadAvg = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	return m
}

func (e *env) path(name string) string { return filepath.Join(e.o.workdir, name) }

// onlineCPUs counts the machine's CPUs; runtime.NumCPU only sees the one
// the harness is pinned to.
func onlineCPUs() int {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.NumCPU()
	}
	return strings.Count(string(b), "\nprocessor\t") + map[bool]int{true: 1}[strings.HasPrefix(string(b), "processor\t")]
}

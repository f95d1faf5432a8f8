package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/pkg/testbin"
)

// Two builds told apart by their version stamp, built once for the
// upgrade tests.
var versions struct {
	once    sync.Once
	v1, v2  string
	err     error
	cleanup []func()
}

func upgradeBinaries(t *testing.T) (v1, v2 string) {
	t.Helper()
	versions.once.Do(func() {
		for _, v := range []string{"upgrade-v1", "upgrade-v2"} {
			bin, cleanup, err := testbin.BuildVersion(v)
			if err != nil {
				versions.err = err
				return
			}
			versions.cleanup = append(versions.cleanup, cleanup)
			if versions.v1 == "" {
				versions.v1 = bin
			} else {
				versions.v2 = bin
			}
		}
	})
	if versions.err != nil {
		t.Fatal(versions.err)
	}
	return versions.v1, versions.v2
}

// upgradeRig is one sluice under upgrade: its binary path (which tests
// rename new files over), config and addresses, and the log records of
// every process it became (they share one stderr).
type upgradeRig struct {
	t                   *testing.T
	dir, bin, cfg, sock string
	p                   *proc
	tcp, udp, admin     string
}

const upgradeConfig = `log:
  level: info
admin:
  address: 127.0.0.1:0
shutdown:
  drain_timeout: 2s
listeners:
  - name: tcp
    network: tcp
    address: 127.0.0.1:0
    chain: [{handler: echo}]
  - name: unix
    network: unix
    address: %s
    chain: [{handler: echo}]
  - name: udp
    network: udp
    address: 127.0.0.1:0
    chain: [{handler: echo}]
`

// startUpgradable copies the v1 build to a fresh directory and runs it
// from there, as a package would from /usr/bin.
func startUpgradable(t *testing.T) *upgradeRig {
	t.Helper()
	v1, _ := upgradeBinaries(t)
	dir := sockDir(t)
	r := &upgradeRig{t: t, dir: dir, bin: filepath.Join(dir, "sluice"), sock: filepath.Join(dir, "e.sock")}
	copyExec(t, v1, r.bin)
	r.cfg = writeConfig(t, dir, fmt.Sprintf(upgradeConfig, r.sock))
	cmd := exec.Command(r.bin, "run", "-c", r.cfg, "--watch=false")
	cmd.Env = append(os.Environ(), "SLUICE_LOG_FORMAT=json")
	r.p = launchShared(t, cmd)
	if !r.p.waitLog("sluice started", 20*time.Second) {
		t.Fatalf("sluice did not start; output:\n%s", r.p.output())
	}
	r.tcp, r.udp = r.p.addr("tcp"), r.p.addr("udp")
	r.admin = r.p.find("admin endpoint up")["address"].(string)
	return r
}

// launchShared is launchCmd for a process that upgrades: its stderr is a
// pipe the new process inherits too, so proc.done closes when the first
// process exits while its records keep coming from the next one. The
// processes it upgraded to are killed at cleanup.
func launchShared(t *testing.T, cmd *exec.Cmd) *proc {
	t.Helper()
	rd, wr, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = wr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	wr.Close()
	p := &proc{t: t, cmd: cmd, done: make(chan struct{})}
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		sc := bufio.NewScanner(rd)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			p.mu.Lock()
			p.raw.Write(line)
			p.raw.WriteByte('\n')
			var rec map[string]any
			if json.Unmarshal(line, &rec) == nil {
				p.logs = append(p.logs, rec)
			}
			p.mu.Unlock()
		}
	}()
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop()
		for _, pid := range p.upgradedPIDs() {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		select {
		case <-readDone:
		case <-time.After(10 * time.Second):
		}
		rd.Close()
	})
	return p
}

// upgradedPIDs are the pids of the processes upgrades started.
func (p *proc) upgradedPIDs() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	var pids []int
	for _, r := range p.logs {
		if r["@message"] == "sluice started" && r["upgraded"] == true {
			pids = append(pids, int(r["pid"].(float64)))
		}
	}
	return pids
}

func copyExec(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

// replaceBinary puts a new file at the rig's binary path by renaming it
// over, as dpkg and rpm do: the running process's file is unlinked.
func (r *upgradeRig) replaceBinary(from string) {
	r.t.Helper()
	tmp := r.bin + ".new"
	copyExec(r.t, from, tmp)
	if err := os.Rename(tmp, r.bin); err != nil {
		r.t.Fatal(err)
	}
}

// noKeepAlive makes each admin request a new connection, as curl does:
// a kept-alive one would stay with the old process.
var noKeepAlive = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 30 * time.Second}

func (r *upgradeRig) status() map[string]any {
	r.t.Helper()
	resp, err := noKeepAlive.Get("http://" + r.admin + "/status")
	if err != nil {
		r.t.Fatalf("GET /status: %v", err)
	}
	defer resp.Body.Close()
	var st map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		r.t.Fatal(err)
	}
	return st
}

func (r *upgradeRig) postUpgrade() (int, map[string]any) {
	r.t.Helper()
	resp, err := noKeepAlive.Post("http://"+r.admin+"/upgrade", "", nil)
	if err != nil {
		r.t.Fatalf("POST /upgrade: %v", err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

// load runs short connections (connect, echo, close) in a loop on TCP and
// Unix from several goroutines and counts every failure, until stop.
type load struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	firstErr   error
	stop       chan struct{}
	wg         sync.WaitGroup
}

func startLoad(r *upgradeRig, workers int) *load {
	l := &load{stop: make(chan struct{})}
	for i := range workers {
		network, addr := "tcp", r.tcp
		if i%2 == 1 {
			network, addr = "unix", r.sock
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for n := 0; ; n++ {
				select {
				case <-l.stop:
					return
				default:
				}
				if err := echoShort(network, addr, fmt.Sprintf("w%d-%d\n", i, n)); err != nil {
					l.failed.Add(1)
					l.mu.Lock()
					if l.firstErr == nil {
						l.firstErr = err
					}
					l.mu.Unlock()
				} else {
					l.ok.Add(1)
				}
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	return l
}

func (l *load) finish(t *testing.T) {
	t.Helper()
	close(l.stop)
	l.wg.Wait()
	if l.ok.Load() == 0 {
		t.Fatal("load: no connection succeeded")
	}
	if n := l.failed.Load(); n > 0 {
		t.Errorf("load: %d of %d connections failed; first: %v", n, n+l.ok.Load(), l.firstErr)
	}
	t.Logf("load: %d connections, %d failed", l.ok.Load()+l.failed.Load(), l.failed.Load())
}

func echoShort(network, addr, msg string) error {
	c, err := net.DialTimeout(network, addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, msg); err != nil {
		return err
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil {
		return err
	}
	if string(buf) != msg {
		return fmt.Errorf("echo: got %q, want %q", buf, msg)
	}
	return nil
}

// held is a long-lived client echoing every 50 ms; it remembers when its
// last echo succeeded and when it first failed.
type held struct {
	name     string
	lastOK   atomic.Int64 // unix nanoseconds
	failedAt atomic.Int64
	stop     chan struct{}
	done     chan struct{}
}

func startHeld(t *testing.T, network, addr string) *held {
	t.Helper()
	c, err := net.DialTimeout(network, addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s %s: %v", network, addr, err)
	}
	h := &held{name: network, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(h.done)
		defer c.Close()
		buf := make([]byte, 64)
		for n := 0; ; n++ {
			select {
			case <-h.stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			msg := fmt.Sprintf("%s-%d", network, n)
			_ = c.SetDeadline(time.Now().Add(2 * time.Second))
			_, err := io.WriteString(c, msg)
			var got int
			if err == nil {
				got, err = io.ReadAtLeast(c, buf, len(msg))
			}
			if err != nil || string(buf[:got]) != msg {
				if network == "udp" {
					continue // a datagram may be lost; the next one tells
				}
				h.failedAt.Store(time.Now().UnixNano())
				return
			}
			h.lastOK.Store(time.Now().UnixNano())
		}
	}()
	t.Cleanup(func() {
		select {
		case <-h.stop:
		default:
			close(h.stop)
		}
		<-h.done
	})
	return h
}

// upgradeUnderLoad is the shared scenario: load and long-lived clients,
// the v2 binary renamed over v1, then trigger; the new process must serve
// everything with no failed connect, and the old one drain and exit 0.
func upgradeUnderLoad(t *testing.T, trigger func(r *upgradeRig) int) {
	_, v2 := upgradeBinaries(t)
	r := startUpgradable(t)
	oldPID := r.p.cmd.Process.Pid
	l := startLoad(r, 4)
	heldTCP := startHeld(t, "tcp", r.tcp)
	heldUnix := startHeld(t, "unix", r.sock)
	heldUDP := startHeld(t, "udp", r.udp)
	time.Sleep(300 * time.Millisecond)

	r.replaceBinary(v2)
	newPID := trigger(r)
	ready := time.Now()
	if !r.p.waitLog("upgrade: new process ready; draining", 30*time.Second) {
		t.Fatalf("no upgrade; output:\n%s", r.p.output())
	}
	if pids := r.p.upgradedPIDs(); len(pids) != 1 || (newPID != 0 && pids[0] != newPID) {
		t.Fatalf("upgraded pids %v, want one (%d)", pids, newPID)
	}
	newPID = r.p.upgradedPIDs()[0]

	st := r.status()
	if st["version"] != "upgrade-v2" || int(st["pid"].(float64)) != newPID {
		t.Errorf("/status after the upgrade: version %v pid %v, want upgrade-v2 and %d", st["version"], st["pid"], newPID)
	}
	if code := r.p.wait(20 * time.Second); code != 0 {
		t.Errorf("old process (pid %d) exited %d, want 0; output:\n%s", oldPID, code, r.p.output())
	}
	exited := time.Now()
	// Keep loading the new process alone for a while.
	time.Sleep(300 * time.Millisecond)
	l.finish(t)

	// The long-lived stream connections belong to the old process: they
	// kept echoing after the new one was ready, until the drain closed
	// them (2s later).
	for _, h := range []*held{heldTCP, heldUnix} {
		last := time.Unix(0, h.lastOK.Load())
		if !last.After(ready.Add(time.Second)) {
			t.Errorf("%s: last echo at %v, want one more than 1s after the new process was ready (%v)", h.name, last, ready)
		}
	}
	// The UDP socket is the same one in the new process: its client never
	// notices.
	time.Sleep(200 * time.Millisecond)
	if last := time.Unix(0, heldUDP.lastOK.Load()); !last.After(exited) {
		t.Errorf("udp: last echo at %v, before the old process exited (%v)", last, exited)
	}
	if fi, err := os.Lstat(r.sock); err != nil || fi.Mode()&os.ModeSocket == 0 {
		t.Errorf("unix socket file after the old process exited: %v", err)
	}
	if err := echoShort("unix", r.sock, "after\n"); err != nil {
		t.Errorf("unix after the upgrade: %v", err)
	}
	if err := echoShort("tcp", r.tcp, "after\n"); err != nil {
		t.Errorf("tcp after the upgrade: %v", err)
	}
}

func TestUpgradeBySignalUnderLoad(t *testing.T) {
	upgradeUnderLoad(t, func(r *upgradeRig) int {
		r.p.signal(syscall.SIGUSR2)
		return 0
	})
}

func TestUpgradeByAdminUnderLoad(t *testing.T) {
	upgradeUnderLoad(t, func(r *upgradeRig) int {
		code, body := r.postUpgrade()
		if code != http.StatusOK || body["result"] != "success" {
			r.t.Fatalf("POST /upgrade: %d %v", code, body)
		}
		return int(body["pid"].(float64))
	})
}

// A second upgrade while the previous process still drains is refused,
// and says why.
func TestUpgradeRefusedWhileDraining(t *testing.T) {
	_, v2 := upgradeBinaries(t)
	r := startUpgradable(t)
	h := startHeld(t, "tcp", r.tcp) // keeps the old process draining
	r.replaceBinary(v2)
	if code, body := r.postUpgrade(); code != http.StatusOK {
		t.Fatalf("first POST /upgrade: %d %v", code, body)
	}
	code, body := r.postUpgrade()
	if code != http.StatusConflict || body["result"] != "refused" || !strings.Contains(fmt.Sprint(body["error"]), "drains") {
		t.Errorf("second POST /upgrade while draining: %d %v, want 409 refused", code, body)
	}
	if code := r.p.wait(20 * time.Second); code != 0 {
		t.Errorf("old process exited %d", code)
	}
	close(h.stop)
	// Once the old process is gone, the next upgrade goes through.
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body = r.postUpgrade()
		if code == http.StatusOK || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code != http.StatusOK {
		t.Errorf("POST /upgrade after the drain: %d %v", code, body)
	}
}

// failedUpgrade breaks the upgrade with spoil, triggers it both ways, and
// checks that the old process went on serving as if nothing happened.
func failedUpgrade(t *testing.T, spoil func(r *upgradeRig)) {
	r := startUpgradable(t)
	pid := r.p.cmd.Process.Pid
	l := startLoad(r, 4)
	h := startHeld(t, "tcp", r.tcp)
	spoil(r)

	r.p.signal(syscall.SIGUSR2)
	if !r.p.waitLog("upgrade failed", 30*time.Second, "@level", "error") {
		t.Fatalf("no 'upgrade failed' at error; output:\n%s", r.p.output())
	}
	code, body := r.postUpgrade()
	if code != http.StatusInternalServerError || body["result"] != "failure" {
		t.Errorf("POST /upgrade: %d %v, want 500 failure", code, body)
	}
	time.Sleep(300 * time.Millisecond)
	l.finish(t)
	if st := r.status(); int(st["pid"].(float64)) != pid || st["version"] != "upgrade-v1" {
		t.Errorf("/status: pid %v version %v, want %d upgrade-v1", st["pid"], st["version"], pid)
	}
	if time.Since(time.Unix(0, h.lastOK.Load())) > time.Second || h.failedAt.Load() != 0 {
		t.Error("the long-lived connection stopped echoing")
	}
	select {
	case <-r.p.done:
		t.Fatalf("the old process exited; output:\n%s", r.p.output())
	default:
	}
	if pids := r.p.upgradedPIDs(); len(pids) != 0 {
		t.Errorf("a new process started serving: %v", pids)
	}
	r.p.signal(syscall.SIGTERM)
	if code := r.p.wait(20 * time.Second); code != 0 {
		t.Errorf("exit %d after SIGTERM", code)
	}
	if _, err := os.Lstat(r.sock); err == nil {
		t.Error("the unix socket file is left after a clean shutdown")
	}
}

func TestUpgradeFailsWhenTheNewBinaryExits1(t *testing.T) {
	failedUpgrade(t, func(r *upgradeRig) {
		script := filepath.Join(r.dir, "broken")
		if err := os.WriteFile(script, []byte("#!/bin/sh\necho broken build >&2\nexit 1\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(script, r.bin); err != nil {
			t.Fatal(err)
		}
	})
}

func TestUpgradeFailsOnAnInvalidConfig(t *testing.T) {
	failedUpgrade(t, func(r *upgradeRig) {
		_, v2 := upgradeBinaries(t)
		r.replaceBinary(v2)
		if err := os.WriteFile(r.cfg, []byte("listeners:\n  - name: x\n    network: tcp\n    address: 127.0.0.1:0\n    chain: [{handler: ech0}]\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	})
}

// TestUpgradeWithSocketActivation: sockets systemd passed are handed over
// like any other, systemd is told the new main pid, and the Unix socket's
// file, which is the .socket unit's, is never removed, by either process.
func TestUpgradeWithSocketActivation(t *testing.T) {
	dir := sockDir(t)
	notify, notifyPath := fakeNotifySocket(t, dir)
	sock := filepath.Join(dir, "echo.sock")
	tcpF, tcpAddr := socketFile(t, "tcp", "127.0.0.1:0")
	unixF, _ := socketFile(t, "unix", sock)
	cfgPath := writeConfig(t, t.TempDir(), fmt.Sprintf(`shutdown: {drain_timeout: 1s}
listeners:
  - name: echo-tcp
    network: tcp
    address: %s
    chain: [{handler: echo}]
  - name: echo-unix
    network: unix
    address: %s
    chain: [{handler: echo}]
`, tcpAddr, sock))
	cmd := exec.Command("/bin/sh", "-c", `export LISTEN_PID=$$; exec "$0" "$@"`, binary, "run", "-c", cfgPath, "--watch=false")
	cmd.Env = append(os.Environ(), "SLUICE_LOG_FORMAT=json", "NOTIFY_SOCKET="+notifyPath,
		"LISTEN_FDS=2", "LISTEN_FDNAMES=echo-tcp:echo-unix")
	cmd.ExtraFiles = []*os.File{tcpF, unixF}
	p := launchShared(t, cmd)
	tcpF.Close()
	unixF.Close()
	if got := nextNotify(t, notify, p); !strings.HasPrefix(got, "READY=1") {
		t.Fatalf("first notification %q", got)
	}

	p.signal(syscall.SIGUSR2)
	var mainPID string
	for mainPID == "" {
		if m := regexp.MustCompile(`MAINPID=(\d+)`).FindStringSubmatch(nextNotify(t, notify, p)); m != nil {
			mainPID = m[1]
		}
	}
	pids := p.upgradedPIDs()
	if len(pids) != 1 || strconv.Itoa(pids[0]) != mainPID {
		t.Fatalf("MAINPID=%s, upgraded processes %v; output:\n%s", mainPID, pids, p.output())
	}
	if code := p.wait(20 * time.Second); code != 0 {
		t.Fatalf("old process exited %d; output:\n%s", code, p.output())
	}
	echoOnce(t, dialT(t, "tcp", tcpAddr), "inherited tcp, new process\n")
	echoOnce(t, dialT(t, "unix", sock), "inherited unix, new process\n")

	if err := syscall.Kill(pids[0], syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for p.count("shutdown finished") < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the new process did not shut down; output:\n%s", p.output())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := os.Lstat(sock); err != nil {
		t.Errorf("the inherited socket's file was removed: %v", err)
	}
}

// count is how many log records have message msg.
func (p *proc) count(msg string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, r := range p.logs {
		if r["@message"] == msg {
			n++
		}
	}
	return n
}

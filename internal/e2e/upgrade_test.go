package e2e

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/testnet"
)

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
	// Both processes write to one log pipe: the old one's line above may
	// come through before the new one's "sluice started" record.
	r.p.waitLog("sluice started", 20*time.Second, "upgraded", "true")
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
	// The held connection keeps the old process draining until the test
	// closes it, once the second upgrade has been answered: with a 2s
	// drain, a machine slow enough between the two requests would let
	// the old process exit first, and the second upgrade go through.
	r := startUpgradableDrain(t, "1m")
	h := startHeld(t, "tcp", r.tcp)
	r.replaceBinary(v2)
	if code, body := r.postUpgrade(); code != http.StatusOK {
		t.Fatalf("first POST /upgrade: %d %v", code, body)
	}
	code, body := r.postUpgrade()
	if code != http.StatusConflict || body["result"] != "refused" || !strings.Contains(fmt.Sprint(body["error"]), "drains") {
		t.Errorf("second POST /upgrade while draining: %d %v, want 409 refused", code, body)
	}
	close(h.stop)
	if code := r.p.wait(20 * time.Second); code != 0 {
		t.Errorf("old process exited %d", code)
	}
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
		return
	}
	// The process that upgrade started is killed at cleanup by its
	// start record, which it writes once it told its parent it serves:
	// wait for it, or the cleanup misses it and it outlives the test.
	deadline = time.Now().Add(20 * time.Second)
	for len(r.p.upgradedPIDs()) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("upgraded pids %v, want 2; output:\n%s", r.p.upgradedPIDs(), r.p.output())
		}
		time.Sleep(20 * time.Millisecond)
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
	// Should the test fail before the new process's "sluice started"
	// record came through the log pipe, the harness would not know its
	// pid: it must not outlive the test.
	if pid, err := strconv.Atoi(mainPID); err == nil {
		t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	}
	// MAINPID may reach the notify socket before the new process's
	// "sluice started" record has come through the log pipe.
	p.waitLog("sluice started", 20*time.Second, "upgraded", "true")
	pids := p.upgradedPIDs()
	if len(pids) != 1 || strconv.Itoa(pids[0]) != mainPID {
		t.Fatalf("MAINPID=%s, upgraded processes %v; output:\n%s", mainPID, pids, p.output())
	}
	if code := p.wait(20 * time.Second); code != 0 {
		t.Fatalf("old process exited %d; output:\n%s", code, p.output())
	}
	testnet.MustEcho(t, dialT(t, "tcp", tcpAddr), "inherited tcp, new process\n")
	testnet.MustEcho(t, dialT(t, "unix", sock), "inherited unix, new process\n")

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

//go:build linux

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The upgrade figures: 20 binary upgrades (SIGUSR2) of a sluice under
// connection load, counting connects refused and connections cut (goal 0
// and 0), and the time from SIGUSR2 until the new process serves, i.e.
// until the admin endpoint's /status answers with another pid (the new
// process binds the admin socket last, after every listener).
//
// Before each upgrade the binary is renamed over, as a package manager
// does. The old process is waited for before the next upgrade: an upgrade
// is refused while the previous process drains.

const upgradeConfig = "admin:\n  address: %s\n" + configHeader + `  - name: echo
    network: tcp
    address: %s
    idle_timeout: 5m
    chain:
      - handler: echo
`

// upgradeN is how many upgrades one run does.
const upgradeN = 20

func upgradeLatency(e *env) error {
	if e.o.profile != "" {
		e.note("upgrade not measured: with -profile sluice runs inside the harness, which cannot replace itself")
		return nil
	}
	if help, _ := exec.Command(e.o.sluice, "run", "--help").CombinedOutput(); !strings.Contains(string(help), "SIGUSR2") {
		e.note("upgrade not measured: this sluice build has no SIGUSR2 upgrade")
		return nil
	}
	// Processes an upgrade started outlive their parent; as a subreaper
	// the harness becomes their parent and collects their exit status.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_CHILD_SUBREAPER): %w", err)
	}
	defer func() { _ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0) }()

	bin := e.path("sluice-upgraded")
	if err := copyFile(e.o.sluice, bin); err != nil {
		return err
	}
	echo, err := freePort()
	if err != nil {
		return err
	}
	admin, err := freePort()
	if err != nil {
		return err
	}
	cfg := e.path("upgrade.yaml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, upgradeConfig, admin, echo), 0o644); err != nil {
		return err
	}
	t, err := e.startSluiceArgs("sluice-upgrade", bin, cfg, echo, "--watch=false")
	if err != nil {
		return err
	}
	cur := t.proc.pid()
	// Whatever happens, no upgraded sluice is left running.
	defer func() { _ = syscall.Kill(cur, syscall.SIGKILL) }()

	l := startUpgradeLoad(echo, 4)
	var ms []float64
	for i := range upgradeN {
		if err := copyFile(e.o.sluice, bin+".new"); err != nil {
			l.stopAndWait()
			return err
		}
		if err := os.Rename(bin+".new", bin); err != nil {
			l.stopAndWait()
			return err
		}
		start := time.Now()
		if err := syscall.Kill(cur, syscall.SIGUSR2); err != nil {
			l.stopAndWait()
			return err
		}
		next, err := waitNewPID(admin, cur, 30*time.Second)
		if err != nil {
			l.stopAndWait()
			return fmt.Errorf("upgrade %d: %w; log ends: %s", i+1, err, t.proc.tail())
		}
		d := time.Since(start)
		ms = append(ms, float64(d)/1e6)
		logf("  upgrade %2d: pid %d -> %d in %.1f ms", i+1, cur, next, float64(d)/1e6)
		code, err := waitExit(t.proc, cur, 60*time.Second)
		if err != nil || code != 0 {
			l.stopAndWait()
			return fmt.Errorf("upgrade %d: the old process %d: exit %d, %v; log ends: %s", i+1, cur, code, err, t.proc.tail())
		}
		cur = next
	}
	time.Sleep(200 * time.Millisecond)
	l.stopAndWait()
	_ = syscall.Kill(cur, syscall.SIGTERM)
	_, _ = waitExit(t.proc, cur, 10*time.Second)

	sec := fmt.Sprintf("Upgrade (%d upgrades by SIGUSR2 under load: 4 clients connecting, echoing 64 bytes, closing)", upgradeN)
	one := func(key, name, unit string, v float64, rounds []float64) Figure {
		return Figure{Key: key, Section: sec, Name: name, Unit: unit, Lower: true,
			Values: []Value{{Target: sluiceT, Median: v}}, Rounds: map[string][]float64{sluiceT: rounds}}
	}
	e.res.Figures = append(e.res.Figures,
		one("upgrade.p50", "SIGUSR2 to the new process serving, p50", "ms", percentileOf(ms, 0.50), ms),
		one("upgrade.p99", "SIGUSR2 to the new process serving, p99", "ms", percentileOf(ms, 0.99), nil),
		one("upgrade.refused", "connects refused (goal 0)", "connects", float64(l.refused.Load()), nil),
		one("upgrade.cut", "connections cut (goal 0)", "connections", float64(l.cut.Load()), nil),
		one("upgrade.connections", "connections served during the upgrades", "connections", float64(l.ok.Load()), nil),
	)
	if l.refused.Load()+l.cut.Load() > 0 {
		e.note("upgrade: %d connects refused and %d connections cut during %d upgrades (goal 0 and 0); first error: %v",
			l.refused.Load(), l.cut.Load(), upgradeN, l.firstErr())
	}
	return nil
}

func percentileOf(xs []float64, q float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	i := int(q*float64(len(s))+0.5) - 1
	return s[max(0, min(i, len(s)-1))]
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o755)
}

// waitNewPID polls the admin endpoint until /status names a pid other
// than old: the new process serves.
func waitNewPID(admin string, old int, timeout time.Duration) (int, error) {
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if resp, err := client.Get("http://" + admin + "/status"); err == nil {
			var st struct {
				PID int `json:"pid"`
			}
			err = json.NewDecoder(resp.Body).Decode(&st)
			resp.Body.Close()
			if err == nil && st.PID != 0 && st.PID != old {
				return st.PID, nil
			}
		}
		time.Sleep(500 * time.Microsecond)
	}
	return 0, fmt.Errorf("no new process within %v", timeout)
}

// waitExit waits for process pid to exit and returns its exit code: the
// first sluice is the harness's own child (p); every later one is a
// child of the harness by reparenting, once its parent exited.
func waitExit(p *proc, pid int, timeout time.Duration) (int, error) {
	if pid == p.pid() {
		select {
		case <-p.done:
			return p.cmd.ProcessState.ExitCode(), nil
		case <-time.After(timeout):
			return -1, errors.New("did not exit")
		}
	}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		var ws syscall.WaitStatus
		got, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
		if err == nil && got == pid {
			return ws.ExitStatus(), nil
		}
		if err != nil && !errors.Is(err, syscall.ECHILD) {
			return -1, err
		}
		// ECHILD: not reparented to us yet (its parent still drains).
		time.Sleep(5 * time.Millisecond)
	}
	return -1, errors.New("did not exit")
}

// upgradeLoad runs clients that connect, echo 64 bytes and close, in a
// loop; a failed connect is a refused one, any later failure a cut one.
type upgradeLoad struct {
	ok, refused, cut atomic.Int64
	stop             chan struct{}
	wg               sync.WaitGroup
	mu               sync.Mutex
	first            error
}

func startUpgradeLoad(addr string, clients int) *upgradeLoad {
	l := &upgradeLoad{stop: make(chan struct{})}
	msg := []byte(strings.Repeat("u", 64))
	for range clients {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			buf := make([]byte, len(msg))
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				c, err := net.DialTimeout("tcp", addr, 5*time.Second)
				if err != nil {
					l.fail(&l.refused, err)
					continue
				}
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				_, err = c.Write(msg)
				if err == nil {
					_, err = io.ReadFull(c, buf)
				}
				_ = c.Close()
				if err != nil {
					l.fail(&l.cut, err)
					continue
				}
				l.ok.Add(1)
			}
		}()
	}
	return l
}

func (l *upgradeLoad) fail(n *atomic.Int64, err error) {
	n.Add(1)
	l.mu.Lock()
	if l.first == nil {
		l.first = err
	}
	l.mu.Unlock()
	time.Sleep(time.Millisecond) // a refusing server must not spin the client
}

func (l *upgradeLoad) firstErr() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.first
}

func (l *upgradeLoad) stopAndWait() {
	close(l.stop)
	l.wg.Wait()
}

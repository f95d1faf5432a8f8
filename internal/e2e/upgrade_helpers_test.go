package e2e

// Helpers for the upgrade tests: a sluice run from its own copy of a
// stamped build, the logs of every process it upgrades to, and clients
// that count every failure.

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/testbin"
	"github.com/sluice-dev/sluice/internal/testnet"
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
  drain_timeout: %s
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
// from there, as a package would from /usr/bin. Its drain after an
// upgrade lasts up to 2s.
func startUpgradable(t *testing.T) *upgradeRig {
	t.Helper()
	return startUpgradableDrain(t, "2s")
}

// startUpgradableDrain is startUpgradable with shutdown.drain_timeout set
// to drain.
func startUpgradableDrain(t *testing.T, drain string) *upgradeRig {
	t.Helper()
	v1, _ := upgradeBinaries(t)
	dir := sockDir(t)
	r := &upgradeRig{t: t, dir: dir, bin: filepath.Join(dir, "sluice"), sock: filepath.Join(dir, "e.sock")}
	copyExec(t, v1, r.bin)
	r.cfg = writeConfig(t, dir, fmt.Sprintf(upgradeConfig, drain, r.sock))
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
	return testnet.Echo(c, msg)
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

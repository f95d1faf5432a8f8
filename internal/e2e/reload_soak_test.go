package e2e

import (
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/saves"
)

const (
	soakWrites    = 50
	soakLongLived = 20
	soakLoaders   = 4 // goroutines connecting, echoing and closing on main
	// visibleWithin bounds the time from a write to its reload being
	// logged. A quiet machine takes well under 200 ms (150 ms of it the
	// save settle time); the bound is loose so that a loaded CI machine
	// does not fail the soak, which is about losing nothing.
	visibleWithin = 10 * time.Second
)

// shortConns is a loop of short connections: connect, echo, close, as fast as
// it goes, until stop. Every failure is kept.
type shortConns struct {
	ok   atomic.Int64
	mu   sync.Mutex
	errs []error
}

func (l *shortConns) run(addr string, stop <-chan struct{}) {
	msg := make([]byte, 48)
	for {
		select {
		case <-stop:
			return
		default:
		}
		_, _ = rand.Read(msg)
		c, err := dialEcho(addr)
		if err == nil {
			err = echo(c, msg)
			_ = c.Close()
		}
		if err != nil {
			l.mu.Lock()
			l.errs = append(l.errs, err)
			l.mu.Unlock()
			continue
		}
		l.ok.Add(1)
	}
}

// hasHandler reports whether the binary knows handler, so that the soak
// changes main's chain for real where a middleware is there (log, once
// merged) and its options otherwise.
func hasHandler(t *testing.T, handler string) bool {
	cfg := "listeners:\n  - name: x\n    network: tcp\n    address: 127.0.0.1:1\n    chain:\n      - handler: " + handler + "\n      - handler: echo\n"
	path := filepath.Join(t.TempDir(), "probe.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return exec.Command(binary, "validate", "-c", path).Run() == nil
}

// TestSoakReloadUnderLoad rewrites the config 50 times (and once with an
// invalid one) while short connections stream through main and steady,
// and 20 long-lived connections sit on main: by rename, in place and by
// Kubernetes symlink swap in turn, adding and removing a second
// listener and changing main each time.
func TestSoakReloadUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("soak: skipped with -short")
	}
	withLog := hasHandler(t, "log")
	mainEntry := func(i int) string {
		// A new idle_timeout on every write makes main "changed" every
		// time: same socket, new chain for new connections.
		l := echoListener("main", "127.0.0.1:0", fmt.Sprintf("    idle_timeout: %ds\n", 60+i))
		if withLog && i%2 == 1 {
			l = strings.Replace(l, "      - handler: echo\n", "      - handler: log\n      - handler: echo\n", 1)
		}
		return l
	}
	steady := echoListener("steady", "127.0.0.3:0", "")
	cfgAt := func(i int) string {
		ls := []string{mainEntry(i), steady}
		if i%2 == 1 {
			ls = append(ls, echoListener("extra", "127.0.0.2:0", ""))
		}
		return configText("5m", ls...)
	}
	invalid := strings.Replace(cfgAt(0), "handler: echo", "handler: ech0", 1)
	styles := []struct {
		name string
		save saves.Style
	}{
		// Symlink first: the in-place write after it goes through the
		// link into the version directory; the rename replaces the link.
		{"symlink", saves.Symlink}, {"in place", saves.InPlace}, {"rename", saves.Rename},
	}

	p := startConfig(t, cfgAt(0))
	mainAddr, steadyAddr := p.addrOf("main"), p.addrOf("steady")

	var long []net.Conn
	for range soakLongLived {
		c, err := dialEcho(mainAddr)
		if err != nil {
			t.Fatalf("long-lived connection: %v", err)
		}
		defer c.Close()
		long = append(long, c)
	}
	echoLong := func(when string) {
		t.Helper()
		for i, c := range long {
			if err := echo(c, []byte(fmt.Sprintf("long %d %s", i, when))); err != nil {
				t.Fatalf("long-lived connection %d %s: %v", i, when, err)
			}
		}
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	mainLoad, steadyLoad := &shortConns{}, &shortConns{}
	for range soakLoaders {
		wg.Go(func() { mainLoad.run(mainAddr, stop) })
	}
	wg.Go(func() { steadyLoad.run(steadyAddr, stop) })
	stopLoad := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopLoad()

	began := time.Now()
	var slowest time.Duration
	for i := 1; i <= soakWrites; i++ {
		if i == soakWrites/2 {
			if err := saves.Rename(p.path, []byte(invalid)); err != nil {
				t.Fatal(err)
			}
			line := p.mustLog("config reload failed", nil, 5*time.Second)
			if msg, _ := line["error"].(string); line["@level"] != "error" || !strings.Contains(msg, "listeners[0].chain[0].handler") {
				t.Fatalf("invalid config: failure line %v does not name the key path", line)
			}
		}
		style := styles[i%len(styles)]
		cfg := cfgAt(i)
		t0 := time.Now()
		if err := style.save(p.path, []byte(cfg)); err != nil {
			t.Fatalf("write %d (%s): %v", i, style.name, err)
		}
		p.waitReload(cfg, visibleWithin)
		slowest = max(slowest, time.Since(t0))

		if i%2 == 1 {
			if err := checkEcho(p.addrOf("extra")); err != nil {
				t.Fatalf("write %d (%s): added listener does not serve: %v", i, style.name, err)
			}
		} else if extra := p.addrOf("extra"); !refused(extra) {
			t.Fatalf("write %d (%s): removed listener %s still accepts", i, style.name, extra)
		}
		if i%10 == 0 {
			echoLong(fmt.Sprintf("after write %d", i))
		}
	}
	stopLoad()
	took := time.Since(began)

	for name, l := range map[string]*shortConns{"main": mainLoad, "steady": steadyLoad} {
		if len(l.errs) > 0 {
			t.Errorf("%s: %d failed connects or echoes of %d; first: %v", name, len(l.errs), int64(len(l.errs))+l.ok.Load(), l.errs[0])
		}
		if l.ok.Load() < soakWrites {
			t.Errorf("%s: only %d echoes under load: the load did not run", name, l.ok.Load())
		}
	}
	echoLong("at the end")
	if n := len(p.logs.match("config reloaded", nil)); n != soakWrites {
		t.Errorf("%d reloads logged, want %d", n, soakWrites)
	}
	if n := len(p.logs.match("config reload failed", nil)); n != 1 {
		t.Errorf("%d failed reloads logged, want 1", n)
	}
	if m := p.logs.match("listener up", map[string]any{"listener": "main"}); len(m) != 1 {
		t.Errorf("main's socket was bound %d times, want once", len(m))
	}
	if m := p.logs.match("listener up", map[string]any{"listener": "steady"}); len(m) != 1 {
		t.Errorf("steady's socket was bound %d times, want once", len(m))
	}
	t.Logf("%d writes in %v (slowest to reload %v); %d echoes on main, %d on steady; log handler in chain: %v",
		soakWrites, took.Round(time.Millisecond), slowest.Round(time.Millisecond), mainLoad.ok.Load(), steadyLoad.ok.Load(), withLog)
	if took > 60*time.Second {
		t.Errorf("the soak took %v, want well under a minute", took)
	}
}

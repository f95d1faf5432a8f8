package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/admintest"
	"github.com/sluice-dev/sluice/pkg/admin"
)

// fleetKey is the etcd key the fleet tests share.
const fleetKey = "/sluice/config.yaml"

// fleetDoc is a config every instance can share: its listener is a Unix
// socket with a relative path, so each instance, in a working directory
// of its own, binds its own; the admin address comes from each
// instance's SLUICE_ADMIN_ADDRESS. idle tells one version from another
// (a changed option on the same socket, which stays open).
func fleetDoc(idle int) string {
	return fmt.Sprintf(`listeners:
  - name: echo
    network: unix
    address: echo.sock
    idle_timeout: %ds
    chain:
      - handler: echo
`, idle)
}

// instance is one sluice of a fleet, run with -c etcd://...
type instance struct {
	*proc
	name  string
	dir   string // working directory: echo.sock and cache.yaml are here
	admin string // base URL of the admin endpoint
	http  *http.Client
}

// launchInstance runs sluice on url in dir (made if need be) with its
// cache there too, without waiting.
func launchInstance(t *testing.T, name, url, dir string) *instance {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	addr := admintest.FreeAddr(t, "127.0.0.1")
	cmd := exec.Command(binary, "run", "-c", url, "--cache", filepath.Join(dir, "cache.yaml"))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SLUICE_LOG_FORMAT=json", "SLUICE_LOG_LEVEL=info", "SLUICE_ADMIN_ADDRESS="+addr)
	in := &instance{proc: launchCmd(t, cmd), name: name, dir: dir, admin: "http://" + addr,
		http: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}}}
	t.Cleanup(in.http.CloseIdleConnections)
	return in
}

// startInstance is launchInstance that waits until sluice serves; the
// cleanup stops it with SIGTERM and checks it exits 0.
func startInstance(t *testing.T, name, url, dir string) *instance {
	t.Helper()
	in := launchInstance(t, name, url, dir)
	in.graceful = true
	in.mustLog("sluice started", nil, 30*time.Second)
	return in
}

// status is GET /status over the instance's kept-alive client, for
// polling often.
func (in *instance) status() (admin.Status, error) {
	var st admin.Status
	resp, err := in.http.Get(in.admin + "/status")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return st, err
	}
	return st, json.Unmarshal(b, &st)
}

// revision is the etcd revision of the running config, as /status says.
func (in *instance) revision(t *testing.T) int64 {
	t.Helper()
	st, err := in.status()
	if err != nil {
		t.Fatalf("%s: /status: %v", in.name, err)
	}
	return st.Source.Revision
}

// sourceUp is sluice_config_source_up as /metrics says.
func (in *instance) sourceUp(t *testing.T) float64 {
	t.Helper()
	return admintest.ScrapeMetrics(t, in.admin).Must(t, "sluice_config_source_up")
}

// echo checks the instance's listener answers.
func (in *instance) echo(t *testing.T) {
	t.Helper()
	admintest.EchoRoundTrip(t, "unix", filepath.Join(in.dir, "echo.sock"), admintest.Payload(1024))
}

// allApplied waits until every instance runs rev and returns how long
// the slowest took since start.
func allApplied(t *testing.T, start time.Time, rev int64, within time.Duration, fleet ...*instance) time.Duration {
	t.Helper()
	var wg sync.WaitGroup
	seen := make([]time.Time, len(fleet))
	failed := make([]string, len(fleet))
	for i, in := range fleet {
		wg.Add(1)
		go func() {
			defer wg.Done()
			deadline := time.Now().Add(within)
			for {
				st, err := in.status()
				if err == nil && st.Source.Revision >= rev {
					seen[i] = time.Now()
					return
				}
				if time.Now().After(deadline) {
					failed[i] = fmt.Sprintf("%s: revision %d not applied within %v (running %d, error %v)", in.name, rev, within, st.Source.Revision, err)
					return
				}
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	var slowest time.Duration
	for i := range fleet {
		if failed[i] != "" {
			t.Fatal(failed[i])
		}
		slowest = max(slowest, seen[i].Sub(start))
	}
	return slowest
}

var publishedRev = regexp.MustCompile(`revision (\d+)\n$`)

// publish runs `sluice publish -c FILE [args] url` with doc in FILE and
// returns its exit code, stdout and stderr.
func publishCLI(t *testing.T, doc, url string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "new.yaml")
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, append(append([]string{"publish", "-c", path}, args...), url)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("sluice publish: %v", err)
	}
	return code, out.String(), errb.String()
}

// mustPublish publishes doc and returns the revision it printed.
func mustPublish(t *testing.T, doc, url string, args ...string) int64 {
	t.Helper()
	code, out, errs := publishCLI(t, doc, url, args...)
	m := publishedRev.FindStringSubmatch(out)
	if code != 0 || m == nil {
		t.Fatalf("sluice publish: exit %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
	rev, _ := strconv.ParseInt(m[1], 10, 64)
	return rev
}

// cutProxy forwards TCP to etcd until cut, so that one instance can lose
// etcd while the others keep it; restore listens again on the same
// address.
type cutProxy struct {
	t      *testing.T
	addr   string
	target string
	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]bool
	wg     sync.WaitGroup
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	p := &cutProxy{t: t, target: target, conns: map[net.Conn]bool{}}
	p.listen("127.0.0.1:0")
	t.Cleanup(p.cut)
	return p
}

func (p *cutProxy) listen(addr string) {
	p.t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		p.t.Fatal(err)
	}
	p.mu.Lock()
	p.ln, p.addr = ln, ln.Addr().String()
	p.mu.Unlock()
	p.wg.Add(1)
	go func() { // the acceptor: ends when cut closes ln
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				_ = c.Close()
				continue
			}
			p.mu.Lock()
			if p.ln != ln { // cut while this one was being set up
				p.mu.Unlock()
				_, _ = c.Close(), up.Close()
				continue
			}
			p.conns[c], p.conns[up] = true, true
			p.mu.Unlock()
			p.wg.Add(2)
			// Each copier ends when either side closes (cut closes both).
			go p.pipe(c, up)
			go p.pipe(up, c)
		}
	}()
}

func (p *cutProxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	_, _ = io.Copy(dst, src)
	_ = dst.Close()
	_ = src.Close()
}

// cut closes the listener and every forwarded connection, and waits for
// the proxy's goroutines.
func (p *cutProxy) cut() {
	p.mu.Lock()
	if p.ln != nil {
		_ = p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		_ = c.Close()
		delete(p.conns, c)
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// restore listens again where it did before the cut.
func (p *cutProxy) restore() { p.listen(p.addr) }

// url is the sluice config location of key through the proxy.
func (p *cutProxy) url(key string) string { return "etcd://" + p.addr + key }

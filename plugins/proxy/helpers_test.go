package proxy_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/sluice-dev/sluice/pkg/plugintest"
	_ "github.com/sluice-dev/sluice/plugins/all"
)

func TestMain(m *testing.M) {
	if os.Getenv(spliceChildEnv) != "" {
		// Re-executed under strace by TestSpliceReachesKernel: run the
		// transfer only, without goleak's output in the way.
		os.Exit(m.Run())
	}
	goleak.VerifyTestMain(m)
}

// harness is an in-process sluice serving YAML configs, with the proxy's
// metric readers.
type harness struct{ *plugintest.Harness }

func newHarness(t testing.TB) *harness {
	t.Helper()
	return &harness{plugintest.NewHarness(t, plugintest.Options{Level: hclog.Debug})}
}

// upstreamErrors reads sluice_upstream_errors_total for one upstream.
func (h *harness) upstreamErrors(listener, upstream string) float64 {
	return h.Metric("sluice_upstream_errors_total", "listener", listener, "upstream", upstream)
}

func (h *harness) active(listener string) float64 {
	return testutil.ToFloat64(h.Metrics.ConnectionsActive.WithLabelValues(listener))
}

func (h *harness) total(listener string) float64 {
	return testutil.ToFloat64(h.Metrics.ConnectionsTotal.WithLabelValues(listener))
}

func (h *harness) bytes(listener, dir string) float64 {
	return testutil.ToFloat64(h.Metrics.BytesTotal.WithLabelValues(listener, dir))
}

// eventually polls cond for up to 10 seconds: generous, since the
// machine is shared.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// server is a test upstream: a listener and the goroutines serving it,
// all ended by the test's cleanup.
type server struct {
	ln    net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns []net.Conn
	n     int // connections accepted
}

// serve runs handle for every connection accepted on ln.
func serve(t testing.TB, ln net.Listener, handle func(net.Conn)) *server {
	t.Helper()
	s := &server{ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.n++
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				handle(c)
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		s.mu.Lock()
		for _, c := range s.conns {
			_ = c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

func (s *server) accepted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

func listenTCP(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func listenUnix(t *testing.T) (net.Listener, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "up.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	return ln, path
}

// echoConn writes back what it reads with a plain buffer loop (no
// splice of its own, so that only sluice's splices show under strace),
// then half-closes: the upstream side of a half-close test.
func echoConn(c net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			break
		}
	}
	closeWrite(c)
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
}

// deadAddr returns a loopback address nothing listens on: connects to it
// are refused.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln := listenTCP(t)
	a := ln.Addr().String()
	_ = ln.Close()
	return a
}

// roundTrip sends msg, half-closes, and returns all that comes back
// until EOF.
func roundTrip(t *testing.T, network, addr, msg string) string {
	t.Helper()
	c, err := net.DialTimeout(network, addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatalf("write: %v", err)
	}
	closeWrite(c)
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return string(b)
}

// closedByPeer reports whether reading c ends in EOF or a reset within
// the deadline, without any data.
func closedByPeer(c net.Conn) error {
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(c)
	if len(b) > 0 {
		return fmt.Errorf("read %q, want nothing", b)
	}
	if err != nil && !isReset(err) {
		return err
	}
	return nil
}

func isReset(err error) bool {
	return err != nil && (errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "reset by peer"))
}

// yamlList formats upstream URLs as a flow-style YAML list.
func yamlList(urls ...string) string {
	return "[" + strings.Join(urls, ", ") + "]"
}

// shrinkBacklog sets a listening socket's backlog to 0 (one pending
// connection), so that a test can fill its accept queue with two dials.
func shrinkBacklog(rc syscall.RawConn) error {
	var lerr error
	if err := rc.Control(func(fd uintptr) { lerr = syscall.Listen(int(fd), 0) }); err != nil {
		return err
	}
	return lerr
}

package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/testnet"
)

// upstream is an echo server the proxy listener forwards to. It honours
// half-close, and Cleanup closes it and waits for its goroutines.
func upstream(t *testing.T) string {
	t.Helper()
	return testnet.Serve(t, testnet.Listen(t, "tcp"), func(c net.Conn) {
		_, _ = io.Copy(c, c)
		_ = c.(*net.TCPConn).CloseWrite()
	})
}

// proxyConfig is a config with the admin endpoint, a 2s shutdown drain,
// the given reload drain, and listener front proxying to up. variant
// makes each reload's config differ: odd variants put a log handler in
// front of the proxy, and each has its own idle_timeout.
func proxyConfig(reloadDrain, up string, variant int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "log:\n  level: info\n  format: json\nadmin:\n  address: 127.0.0.1:0\n")
	fmt.Fprintf(&b, "shutdown:\n  drain_timeout: 2s\nreload:\n  drain_timeout: %s\n", reloadDrain)
	fmt.Fprintf(&b, "listeners:\n  - name: front\n    network: tcp\n    address: 127.0.0.1:0\n    idle_timeout: %dm\n    chain:\n", 60+variant)
	if variant%2 == 1 {
		b.WriteString("      - handler: log\n")
	}
	fmt.Fprintf(&b, "      - handler: proxy\n        upstreams: [tcp://%s]\n", up)
	return b.String()
}

// reloadTo writes cfg and sends SIGHUP, then waits for its reload line.
func (p *proc) reloadTo(cfg string) {
	p.t.Helper()
	if err := os.WriteFile(p.path, []byte(cfg), 0o644); err != nil {
		p.t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		p.t.Fatal(err)
	}
	if line := p.waitReload(cfg, 10*time.Second); line["changed"] != "front" {
		p.t.Fatalf("reload line %v, want front changed", line)
	}
}

// frontStatus is listener front's entry in GET /status.
type frontStatus struct {
	Connections        int  `json:"connections"`
	RetiredConnections int  `json:"retired_connections"`
	Removed            bool `json:"removed"`
}

// admin reads GET path from the admin endpoint.
func (p *proc) admin(path string) []byte {
	p.t.Helper()
	// No keep-alive: the test binary must end with no HTTP goroutine.
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get("http://" + p.addrOfAdmin() + path)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		p.t.Fatalf("GET %s: %d %v\n%s", path, resp.StatusCode, err, body)
	}
	return body
}

func (p *proc) addrOfAdmin() string {
	p.t.Helper()
	m := p.logs.match("admin endpoint up", nil)
	if len(m) == 0 {
		p.t.Fatal("the admin endpoint never came up")
	}
	return m[len(m)-1]["address"].(string)
}

func (p *proc) front() frontStatus {
	p.t.Helper()
	var st struct {
		Listeners []struct {
			Name string `json:"name"`
			frontStatus
		} `json:"listeners"`
	}
	body := p.admin("/status")
	if err := json.Unmarshal(body, &st); err != nil {
		p.t.Fatalf("/status: %v\n%s", err, body)
	}
	for _, l := range st.Listeners {
		if l.Name == "front" {
			return l.frontStatus
		}
	}
	p.t.Fatalf("/status lists no front:\n%s", body)
	return frontStatus{}
}

// retiredMetric is sluice_retired_connections{listener="front"} as
// /metrics serves it.
func (p *proc) retiredMetric() string {
	p.t.Helper()
	for _, line := range strings.Split(string(p.admin("/metrics")), "\n") {
		if v, ok := strings.CutPrefix(line, `sluice_retired_connections{listener="front"} `); ok {
			return v
		}
	}
	p.t.Fatal("/metrics has no sluice_retired_connections for front")
	return ""
}

// TestLongLivedConnectionsSurviveReloads holds connections through a
// proxy listener across 20 reloads that change its chain, for longer
// than shutdown.drain_timeout: with reload.drain_timeout at its default
// none is cut, every byte still flows, and /status and /metrics count
// them as retired until they end.
func TestLongLivedConnectionsSurviveReloads(t *testing.T) {
	const reloads, first = 20, 5
	up := upstream(t)
	p := startConfig(t, proxyConfig("0s", up, 0), "--watch=false")
	addr := p.addrOf("front")

	var held []net.Conn
	hold := func() {
		c, err := dialEcho(addr)
		if err != nil {
			t.Fatalf("connect through the proxy: %v", err)
		}
		held = append(held, c)
	}
	for range first {
		hold()
	}
	for i := 1; i <= reloads; i++ {
		p.reloadTo(proxyConfig("0s", up, i))
		// Every held connection, whatever chain it is on, still echoes;
		// and one more connection starts on the new chain.
		for j, c := range held {
			if err := echo(c, []byte(fmt.Sprintf("reload %d conn %d", i, j))); err != nil {
				t.Fatalf("after reload %d, connection %d: %v", i, j, err)
			}
		}
		hold()
	}
	// The last connection is on the running chain; all others on chains
	// a reload retired.
	retired := len(held) - 1
	if st := p.front(); st.Connections != len(held) || st.RetiredConnections != retired || st.Removed {
		t.Fatalf("/status front = %+v, want %d connections, %d retired", st, len(held), retired)
	}

	// Longer than shutdown.drain_timeout (2s), which bounded reloads
	// before reload.drain_timeout existed.
	time.Sleep(3 * time.Second)
	payload := make([]byte, 256<<10)
	for j, c := range held {
		_, _ = rand.Read(payload)
		if err := echoLarge(c, payload); err != nil {
			t.Fatalf("connection %d after %v: %v", j, 3*time.Second, err)
		}
	}
	if got := p.retiredMetric(); got != fmt.Sprint(retired) {
		t.Fatalf("sluice_retired_connections{listener=front} = %s, want %d", got, retired)
	}
	for _, msg := range []string{"reload drain timeout: closing connections still on a retired chain", "drain timeout: closing remaining connections"} {
		if m := p.logs.match(msg, nil); len(m) != 0 {
			t.Fatalf("a reload cut connections: %v", m)
		}
	}

	// Each ends cleanly: half-close, the last bytes, EOF.
	for j, c := range held {
		if err := finish(c); err != nil {
			t.Fatalf("ending connection %d: %v", j, err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := p.front()
		if st.RetiredConnections == 0 && st.Connections == 0 && p.retiredMetric() == "0" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/status front = %+v and sluice_retired_connections %s 10s after every connection ended", st, p.retiredMetric())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// One line per retired chain, each with how long it lived on.
	closed := p.logs.match("retired chain closed", map[string]any{"listener": "front", "@level": "info"})
	if len(closed) != reloads {
		t.Fatalf("%d 'retired chain closed' lines, want %d", len(closed), reloads)
	}
	// Every one outlived the 3s wait (JSON logs durations in ns).
	for _, line := range closed {
		if d, ok := line["duration"].(float64); !ok || time.Duration(d) < 3*time.Second {
			t.Fatalf("'retired chain closed' without a duration of at least 3s: %v", line)
		}
	}
}

// TestReloadDrainTimeoutCutsWithWarning: with reload.drain_timeout 1s,
// connections on the replaced chain are closed 1-2 s after the reload,
// with one warn line naming the listener and the count, and the
// connections on the new chain are untouched.
func TestReloadDrainTimeoutCutsWithWarning(t *testing.T) {
	const n = 4
	up := upstream(t)
	p := startConfig(t, proxyConfig("1s", up, 0), "--watch=false")
	addr := p.addrOf("front")
	var old []net.Conn
	for range n {
		c, err := dialEcho(addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		old = append(old, c)
	}
	before := time.Now()
	p.reloadTo(proxyConfig("1s", up, 1))
	fresh, err := dialEcho(addr)
	if err != nil {
		t.Fatalf("connect after the reload: %v", err)
	}
	defer fresh.Close()

	var wg sync.WaitGroup
	ended := make([]time.Duration, n)
	errs := make([]error, n)
	for i, c := range old {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = endsWithin(c, 10*time.Second)
			ended[i] = time.Since(before)
		}()
	}
	wg.Wait()
	for i := range old {
		if errs[i] != nil {
			t.Fatalf("connection %d: %v", i, errs[i])
		}
		// 1s after the reload; a generous upper bound for a loaded
		// machine (and the race detector).
		if ended[i] < time.Second || ended[i] > 4*time.Second {
			t.Fatalf("connection %d closed %v after the reload, want 1-2s (at most 4s)", i, ended[i])
		}
	}
	line := p.mustLog("reload drain timeout: closing connections still on a retired chain", map[string]any{"listener": "front"}, 5*time.Second)
	if line["@level"] != "warn" || line["connections"] != float64(n) {
		t.Fatalf("cut logged as %v, want warn with connections=%d", line, n)
	}
	if err := echo(fresh, []byte("the new chain's connection is not cut")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for st := p.front(); st.RetiredConnections != 0 || st.Connections != 1; st = p.front() {
		if time.Now().After(deadline) {
			t.Fatalf("/status front = %+v after the cut, want 1 connection, 0 retired", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// echoLarge sends payload while reading it back, and checks every byte.
func echoLarge(c net.Conn, payload []byte) error {
	if err := c.SetDeadline(time.Now().Add(20 * time.Second)); err != nil {
		return err
	}
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(payload)
		werr <- err
	}()
	got := make([]byte, len(payload))
	_, rerr := io.ReadFull(c, got)
	if err := <-werr; err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if rerr != nil {
		return fmt.Errorf("read: %w", rerr)
	}
	if !bytes.Equal(got, payload) {
		return errors.New("echoed bytes differ from those sent")
	}
	return nil
}

// finish half-closes c, checks the last bytes come back and the
// connection then ends with EOF, and closes it.
func finish(c net.Conn) error {
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return err
	}
	if _, err := io.WriteString(c, "bye"); err != nil {
		return err
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return err
	}
	rest, err := io.ReadAll(c)
	if err != nil {
		return err
	}
	if string(rest) != "bye" {
		return fmt.Errorf("after half-close got %q, want \"bye\"", rest)
	}
	return nil
}

// endsWithin waits for sluice to close c (EOF or reset), failing if it
// is still open after d.
func endsWithin(c net.Conn, d time.Duration) error {
	if err := c.SetReadDeadline(time.Now().Add(d)); err != nil {
		return err
	}
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("still open after %v", d)
	}
	return nil
}

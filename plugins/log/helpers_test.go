package log_test

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.uber.org/goleak"

	"github.com/sluice-dev/sluice/pkg/chain"
	"github.com/sluice-dev/sluice/pkg/plugintest"
	_ "github.com/sluice-dev/sluice/plugins/all"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// harness is an in-process sluice whose log output the test reads.
type harness struct{ *plugintest.Harness }

// newHarness logs at level, as JSON when json is set (log.format: json).
func newHarness(t *testing.T, level hclog.Level, json bool) *harness {
	t.Helper()
	return &harness{plugintest.NewHarness(t, plugintest.Options{Level: level, JSON: json})}
}

// serve applies a config of one TCP listener, name, with chain (YAML list
// items indented for it), and returns its address.
func (h *harness) serve(name, chain string) string {
	h.Apply(`
listeners:
  - name: ` + name + `
    network: tcp
    address: 127.0.0.1:0
    chain:
` + chain)
	return h.Addr(name)
}

// dial connects to addr with a deadline of 10 seconds on everything the
// test does with the connection.
func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

// waitClosed connects to addr and waits for sluice to close the
// connection without sending anything.
func waitClosed(t *testing.T, addr string) net.Conn {
	t.Helper()
	c := dial(t, addr)
	defer c.Close()
	if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil || chain.IsTimeout(err) {
		t.Fatalf("%s: read %d, %v; want it closed", addr, n, err)
	}
	return c
}

// exchange sends each message, reads its echo, then half-closes and reads
// to EOF, as "socat -" does at the end of its input.
func exchange(t *testing.T, addr string, msgs ...[]byte) net.Conn {
	t.Helper()
	c := dial(t, addr)
	defer c.Close()
	for _, m := range msgs {
		if _, err := c.Write(m); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(m))
		if _, err := io.ReadFull(c, got); err != nil {
			t.Fatalf("echo: %v", err)
		}
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if rest, err := io.ReadAll(c); err != nil || len(rest) > 0 {
		t.Fatalf("after half-close: %q, %v; want EOF", rest, err)
	}
	return c
}

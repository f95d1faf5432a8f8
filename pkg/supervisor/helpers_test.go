package supervisor_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.uber.org/goleak"

	"github.com/sluice-dev/sluice/pkg/chain"
	"github.com/sluice-dev/sluice/pkg/config"
	"github.com/sluice-dev/sluice/pkg/registry"
	"github.com/sluice-dev/sluice/pkg/supervisor"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Test handlers. pkg/ never imports a plugin, so the supervisor's tests
// bring their own.

// testEcho echoes and honours half-close.
type testEcho struct{}

func (testEcho) ServeStream(_ context.Context, c *chain.Conn) error {
	n, err := io.Copy(c.Conn, c.Conn)
	c.AddIn(n)
	c.AddOut(n)
	chain.CloseWrite(c.Conn)
	return err
}

// testPanic panics once it has read a byte.
type testPanic struct{}

func (testPanic) ServeStream(_ context.Context, c *chain.Conn) error {
	var b [1]byte
	if _, err := c.Read(b[:]); err != nil {
		return err
	}
	panic("boom")
}

// testPrefix writes its prefix, then echoes: it tells chains apart.
type testPrefix struct {
	Prefix string `mapstructure:"prefix"`
}

func (p *testPrefix) ServeStream(ctx context.Context, c *chain.Conn) error {
	if _, err := io.WriteString(c, p.Prefix); err != nil {
		return err
	}
	return testEcho{}.ServeStream(ctx, c)
}

func init() {
	registry.Register("sv-echo", func() any { return new(testEcho) })
	registry.Register("sv-panic", func() any { return new(testPanic) })
	registry.Register("sv-prefix", func() any { return new(testPrefix) })
}

// start runs a supervisor on the YAML config and stops it (draining for at
// most a second) when the test ends.
func start(t *testing.T, yaml string) *supervisor.Supervisor {
	t.Helper()
	s := supervisor.New(hclog.NewNullLogger(), nil)
	if _, err := s.Apply(context.Background(), mustParse(t, yaml)); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	})
	return s
}

func mustParse(t *testing.T, yaml string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(yaml))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return cfg
}

func tcpListener(name, handler string, extra ...string) string {
	return fmt.Sprintf("  - {name: %s, network: tcp, address: '127.0.0.1:0', chain: [{handler: %s}]%s}\n", name, handler, strings.Join(extra, ""))
}

func addr(t *testing.T, s *supervisor.Supervisor, name string) string {
	t.Helper()
	a, ok := s.Addr(name)
	if !ok {
		t.Fatalf("no listener %q", name)
	}
	return a
}

func dial(t *testing.T, network, address string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout(network, address, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s %s: %v", network, address, err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	return c
}

// roundtrip writes msg and reads the same number of bytes back.
func roundtrip(c net.Conn, msg string) (string, error) {
	if _, err := io.WriteString(c, msg); err != nil {
		return "", err
	}
	buf := make([]byte, len(msg))
	_, err := io.ReadFull(c, buf)
	return string(buf), err
}

// closedByPeer reports whether reading c ends without data, as it does
// once sluice has closed the connection.
func closedByPeer(c net.Conn) bool {
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var b [1]byte
	_, err := c.Read(b[:])
	return errors.Is(err, io.EOF) || isReset(err)
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && !op.Timeout()
}

func tempSock(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "sv")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d + "/s.sock"
}

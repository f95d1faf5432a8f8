package proxy_test

import (
	"crypto/sha256"
	"errors"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/strace"
	"github.com/sluice-dev/sluice/pkg/relay"
)

// spliceChildEnv, when set, makes this test binary the child that
// TestSpliceReachesKernel runs under strace; its value says whether the
// chain wraps the connection.
const spliceChildEnv = "SLUICE_PROXY_SPLICE_CHILD"

const spliceSize = 4 << 20

// TestSpliceReachesKernel proves the zero-copy claim at the system call
// level: it runs a 4 MiB echo through the proxy in a child process under
// strace and sums what splice(2) moved. Unwrapped, all but the first few
// buffers go socket → pipe → socket in both directions (about 4 × 4 MiB);
// with a wrapping middleware, splice is never called.
func TestSpliceReachesKernel(t *testing.T) {
	for _, mode := range []string{"unwrapped", "wrapped"} {
		t.Run(mode, func(t *testing.T) {
			trace := strace.Run(t, "splice", "TestSpliceChild", spliceChildEnv+"="+mode)
			calls, moved := 0, int64(0)
			for _, c := range strace.Calls(trace, "splice") {
				calls++
				if n, err := strconv.ParseInt(strings.SplitN(c.Result, " ", 2)[0], 10, 64); err == nil && n > 0 {
					moved += n
				}
			}
			t.Logf("%s: %d splice calls moved %d bytes", mode, calls, moved)
			switch mode {
			case "unwrapped":
				// Each direction copies its first reads, until they show
				// bulk data (at most bulkReads buffers), then splices the
				// rest: socket → pipe → socket, each byte counted twice.
				if want := int64(4 * (spliceSize - 4*relay.BufferSize)); moved < want {
					t.Fatalf("splice moved %d bytes, want at least %d", moved, want)
				}
			case "wrapped":
				if calls != 0 {
					t.Fatalf("%d splice calls on a wrapped connection", calls)
				}
			}
		})
	}
}

// TestSpliceChild is the traced transfer; it only runs as the child.
func TestSpliceChild(t *testing.T) {
	mode := os.Getenv(spliceChildEnv)
	if mode == "" {
		t.Skip("run by TestSpliceReachesKernel under strace")
	}
	up := serve(t, listenTCP(t), echoConn)
	h := newHarness(t)
	handlers := proxyYAML("tcp://" + up.ln.Addr().String())
	if mode == "wrapped" {
		handlers = "      - handler: " + wrapName + "\n" + handlers
	}
	h.Apply(frontYAML("tcp", "127.0.0.1:0", "0", handlers))

	payload := randomBytes(t, spliceSize)
	c, err := net.DialTimeout("tcp", h.Addr("front"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(payload)
		closeWrite(c)
		werr <- err
	}()
	if got := hashAll(c); got != sha256.Sum256(payload) {
		t.Fatal("corrupted echo")
	}
	if err := <-werr; err != nil && !errors.Is(err, net.ErrClosed) {
		t.Fatal(err)
	}
}

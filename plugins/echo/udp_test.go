package echo_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.uber.org/goleak"

	"github.com/sluice-dev/sluice/internal/testtool"
	"github.com/sluice-dev/sluice/pkg/config"
	"github.com/sluice-dev/sluice/pkg/supervisor"
	_ "github.com/sluice-dev/sluice/plugins/echo"
)

// startUDPEcho serves an echo UDP listener and returns its address. The
// supervisor is shut down, and goroutine leaks checked, at cleanup.
func startUDPEcho(t *testing.T) string {
	t.Helper()
	t.Cleanup(func() { goleak.VerifyNone(t) }) // runs last
	sup := supervisor.New(hclog.NewNullLogger(), nil)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = sup.Shutdown(ctx)
	})
	cfg, err := config.Parse("test.yaml", []byte(`
listeners:
  - name: echo-udp
    network: udp
    address: 127.0.0.1:0
    chain:
      - handler: echo
`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sup.Apply(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	addr, _ := sup.Addr("echo-udp")
	return addr
}

// TestUDPEchoGoClients: every datagram comes back to its sender whole,
// from the empty one to the largest UDP allows, for clients at once.
func TestUDPEchoGoClients(t *testing.T) {
	addr := startUDPEcho(t)
	sizes := []int{0, 1, 512, 1472, 9000, 65507}
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for client := range 3 {
		c, err := net.Dial("udp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			var sent [][]byte
			for i, size := range sizes {
				msg := bytes.Repeat([]byte{byte('a' + client)}, size)
				if size >= 8 {
					copy(msg, fmt.Sprintf("%d-%d-", client, i))
				}
				if err := echoed(c, msg, sent); err != nil {
					errs <- fmt.Errorf("client %d, %d bytes: %v", client, size, err)
					return
				}
				sent = append(sent, msg)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// echoed sends msg on c until its echo comes back. UDP may lose a
// datagram, and here the kernel does: the listener's socket, with the
// default receive buffer (net.core.rmem_default, 208 KiB), holds about
// three datagrams of 64 KiB, fewer while the memory of the ones just
// read is still counted, so three clients sending the largest at once
// overflow it now and then (a plain Go echo server lost 8 rounds of
// 2000). A client resends, as a UDP client does. What must hold is that
// what comes back is this datagram, whole: an echo of an earlier one
// (sent), late after a resend, is skipped; anything else is an error.
func echoed(c net.Conn, msg []byte, sent [][]byte) error {
	buf := make([]byte, 64<<10)
	for range 5 {
		if _, err := c.Write(msg); err != nil {
			return err
		}
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		for {
			n, err := c.Read(buf)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				break // lost: send it again
			}
			if err != nil {
				return err
			}
			if bytes.Equal(buf[:n], msg) {
				return nil
			}
			if !slices.ContainsFunc(sent, func(m []byte) bool { return bytes.Equal(buf[:n], m) }) {
				return fmt.Errorf("got %d bytes that are no datagram this client sent", n)
			}
		}
	}
	return errors.New("no echo after 5 sends")
}

// TestUDPEchoSocat is the README's "socat - UDP:127.0.0.1:7001".
func TestUDPEchoSocat(t *testing.T) {
	socat := testtool.Need(t, "socat", "socat")
	addr := startUDPEcho(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Each line is one datagram; -t 1 waits for the last answers
	// after the input ends.
	cmd := exec.CommandContext(ctx, socat, "-t", "1", "-", "UDP:"+addr)
	cmd.Stdin = strings.NewReader("hello\n")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("socat: %v\n%s", err, out)
	}
	if string(out) != "hello\n" {
		t.Fatalf("socat printed %q, want \"hello\\n\"", out)
	}
}

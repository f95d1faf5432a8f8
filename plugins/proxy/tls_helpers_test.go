package proxy_test

import (
	"bufio"
	"crypto/tls"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/testtool"
)

// writeFile writes b into dir/name and returns the path.
func writeFile(t testing.TB, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// sServer is a running `openssl s_server`: a real TLS upstream.
type sServer struct {
	addr string
	mu   sync.Mutex
	out  strings.Builder
}

func (s *sServer) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.String()
}

// startSServer runs `openssl s_server -rev` (each line it reads comes
// back reversed) on a loopback port of its choosing with the given
// certificate and extra arguments, and stops it at the test's cleanup.
func startSServer(t *testing.T, cert, key string, args ...string) *sServer {
	t.Helper()
	bin := testtool.Need(t, "openssl", "openssl")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	argv := append([]string{"s_server", "-accept", "127.0.0.1:0", "-cert", cert, "-key", key, "-rev"}, args...)
	cmd := exec.Command(bin, argv...)
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	_ = w.Close()
	s := &sServer{}
	addr := make(chan string, 1)
	done := make(chan struct{})
	// The reader ends at the pipe's EOF, when s_server exits.
	go func() {
		defer close(done)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			line := sc.Text()
			s.mu.Lock()
			s.out.WriteString(line + "\n")
			s.mu.Unlock()
			if a, ok := strings.CutPrefix(line, "ACCEPT "); ok {
				select {
				case addr <- a:
				default:
				}
			}
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		<-done
		_ = r.Close()
	})
	select {
	case s.addr = <-addr:
	case <-time.After(10 * time.Second):
		t.Fatalf("s_server did not start:\n%s", s.output())
	}
	return s
}

// tlsServe serves TLS with cfg on a loopback listener, running handle
// for every handshaken connection.
func tlsServe(t *testing.T, cfg *tls.Config, handle func(*tls.Conn)) *server {
	t.Helper()
	return serve(t, listenTCP(t), func(c net.Conn) {
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		tc := tls.Server(c, cfg)
		if err := tc.Handshake(); err != nil {
			return
		}
		handle(tc)
	})
}

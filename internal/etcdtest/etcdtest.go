// Package etcdtest runs a real etcd server for tests: Debian's
// etcd-server package (the etcd binary), on 127.0.0.1 ports of its own
// with a data directory in t.TempDir(). A test that needs it is skipped
// with a hint when etcd is not installed, except in CI (CI=true), where
// that is a failure: .ci/run installs it.
package etcdtest

import (
	"bytes"
	"context"
	"crypto/tls"
	"net"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/sluice-dev/sluice/internal/testtool"
)

// startBound is how long etcd may take to serve: generous, because the
// test machine is small and shared.
const startBound = 20 * time.Second

// Server is one etcd member, stopped when the test ends.
type Server struct {
	t       testing.TB
	bin     string
	dir     string
	client  string // host:port of the client URL
	peer    string
	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{}
	out     *bytes.Buffer
	stopped bool
	tls     *TLS // nil: plain HTTP
}

// TLS is the server side of a TLS etcd: its certificate and key files,
// and the client config that trusts it.
type TLS struct {
	CertFile, KeyFile string
	Client            *tls.Config
}

// Start runs a fresh etcd and waits until it serves.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartTLS(t, nil)
}

// StartTLS runs a fresh etcd that serves clients over TLS with tc (plain
// HTTP when tc is nil).
func StartTLS(t testing.TB, tc *TLS) *Server {
	t.Helper()
	s := &Server{t: t, bin: testtool.Need(t, "etcd", "etcd-server"), dir: t.TempDir(), client: freeAddr(t), peer: freeAddr(t), tls: tc}
	s.start()
	t.Cleanup(s.Stop)
	return s
}

// Endpoint is the client address, host:port.
func (s *Server) Endpoint() string { return s.client }

// URL is the sluice config location of key ("/sluice/config.yaml").
func (s *Server) URL(key string) string { return "etcd://" + s.client + key }

func (s *Server) start() {
	s.t.Helper()
	scheme := "http://"
	var extra []string
	if s.tls != nil {
		scheme = "https://"
		extra = []string{"--cert-file", s.tls.CertFile, "--key-file", s.tls.KeyFile}
	}
	cmd := exec.Command(s.bin, append([]string{
		"--name", "default",
		"--data-dir", s.dir,
		"--listen-client-urls", scheme + s.client,
		"--advertise-client-urls", scheme + s.client,
		"--listen-peer-urls", "http://" + s.peer,
		"--initial-advertise-peer-urls", "http://" + s.peer,
		"--initial-cluster", "default=http://" + s.peer,
		// A single member elects itself: short timers make a restart
		// serve within a second or two.
		"--heartbeat-interval", "50",
		"--election-timeout", "500",
		"--log-level", "warn",
	}, extra...)...)
	out := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = &lockedWriter{mu: &s.mu, w: out}, &lockedWriter{mu: &s.mu, w: out}
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("etcd: %v", err)
	}
	done := make(chan struct{})
	// The reaper ends with the process.
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	s.mu.Lock()
	s.cmd, s.done, s.out, s.stopped = cmd, done, out, false
	s.mu.Unlock()
	s.waitReady(done)
}

// waitReady waits until a put succeeds: the member has elected itself.
func (s *Server) waitReady(done <-chan struct{}) {
	s.t.Helper()
	cli := s.Client()
	defer cli.Close()
	deadline := time.Now().Add(startBound)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := cli.Put(ctx, "/etcdtest/ready", "1")
		cancel()
		if err == nil {
			return
		}
		select {
		case <-done:
			s.t.Fatalf("etcd exited at start:\n%s", s.output())
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("etcd did not serve within %v: %v\n%s", startBound, err, s.output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *Server) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.String()
}

// Stop stops etcd (SIGTERM, then SIGKILL) and waits for it to exit; the
// data directory stays for Restart.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd, done, stopped := s.cmd, s.done, s.stopped
	s.stopped = true
	s.mu.Unlock()
	if stopped || cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// Restart starts etcd again on the same ports and data: the same
// cluster, with its history.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.start()
}

// Client returns a client of this etcd; the caller closes it.
func (s *Server) Client() *clientv3.Client {
	s.t.Helper()
	cfg := clientv3.Config{Endpoints: []string{s.client}, Logger: zap.NewNop(), DialTimeout: 5 * time.Second}
	if s.tls != nil {
		cfg.TLS = s.tls.Client
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		s.t.Fatalf("etcd client: %v", err)
	}
	return cli
}

// Put writes value under key directly, as etcdctl put would (no
// validation), and returns the new revision.
func (s *Server) Put(key, value string) int64 {
	s.t.Helper()
	cli := s.Client()
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cli.Put(ctx, key, value)
	if err != nil {
		s.t.Fatalf("etcd put %s: %v", key, err)
	}
	return resp.Header.Revision
}

// Delete removes key and returns the new revision.
func (s *Server) Delete(key string) int64 {
	s.t.Helper()
	cli := s.Client()
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cli.Delete(ctx, key)
	if err != nil {
		s.t.Fatalf("etcd delete %s: %v", key, err)
	}
	return resp.Header.Revision
}

// Revision is key's ModRevision now; 0 when it does not exist.
func (s *Server) Revision(key string) int64 {
	s.t.Helper()
	cli := s.Client()
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, key)
	if err != nil {
		s.t.Fatalf("etcd get %s: %v", key, err)
	}
	if len(resp.Kvs) == 0 {
		return 0
	}
	return resp.Kvs[0].ModRevision
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

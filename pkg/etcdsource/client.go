package etcdsource

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"strings"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"

	"github.com/sluice-dev/sluice/internal/safefile"
)

// Timeout bounds each request sluice makes to etcd (a get, a publish):
// an unreachable cluster must not hold up a start, a SIGHUP or a
// `sluice publish` for long. The watch is not bounded: it reconnects.
const Timeout = 3 * time.Second

// reconnect is gRPC's backoff between attempts to reach a member, with
// its default growth and jitter but a cap of MaxReconnect rather than
// two minutes: a fleet must catch up within seconds of etcd coming back.
var reconnect = grpc.ConnectParams{
	Backoff: backoff.Config{
		BaseDelay:  100 * time.Millisecond,
		Multiplier: 1.6,
		Jitter:     0.2,
		MaxDelay:   MaxReconnect,
	},
	MinConnectTimeout: Timeout,
}

// MaxReconnect caps the wait between two attempts to reach etcd.
const MaxReconnect = 2 * time.Second

// Access is how sluice authenticates to etcd: TLS files and a user. It
// comes from flags and SLUICE_ETCD_* variables, never from the config
// document itself (the document is what it protects).
type Access struct {
	CA, Cert, Key string // PEM files; all empty means plain TCP
	// InsecureSkipVerify is not offered: a fleet's config is exactly
	// what a man in the middle would want to write.
	Username string
	Password string
}

// maxPasswordFile bounds a password file read: a password is a line.
const maxPasswordFile = 64 << 10

// ReadPasswordFile reads a password kept in a file (a systemd
// credential, a Kubernetes secret), without its trailing newline.
func ReadPasswordFile(path string) (string, error) {
	b, err := safefile.ReadFile(path, maxPasswordFile)
	if err != nil {
		return "", fmt.Errorf("etcd password file: %w", err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// NewClient returns a client for t's members. It does not wait for a
// connection: the first request does, within Timeout, and the client
// keeps reconnecting in the background for the watch.
func NewClient(t Target, a Access) (*clientv3.Client, error) {
	cfg := clientv3.Config{
		Endpoints: t.Endpoints,
		Username:  a.Username,
		Password:  a.Password,
		// etcd's client logs through zap; its retries are reported by
		// sluice's own lines instead.
		Logger: zap.NewNop(),
		// Keepalives notice a member that vanished without closing the
		// connection (a cut network), so that the watch moves on.
		DialKeepAliveTime:    10 * time.Second,
		DialKeepAliveTimeout: 5 * time.Second,
		PermitWithoutStream:  true,
		DialOptions:          []grpc.DialOption{grpc.WithConnectParams(reconnect)},
	}
	if a.CA != "" || a.Cert != "" || a.Key != "" {
		tc, err := tlsConfig(a)
		if err != nil {
			return nil, err
		}
		cfg.TLS = tc
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("etcd client for %s: %w", t.URL, err)
	}
	return cli, nil
}

func tlsConfig(a Access) (*tls.Config, error) {
	if (a.Cert == "") != (a.Key == "") {
		return nil, fmt.Errorf("etcd TLS: a client certificate needs its key, and a key its certificate (--etcd-cert and --etcd-key)")
	}
	info := transport.TLSInfo{CertFile: a.Cert, KeyFile: a.Key, TrustedCAFile: a.CA}
	if a.Cert == "" {
		// TLSInfo.ClientConfig wants a certificate; a CA alone is a
		// server-authenticated connection.
		pem, err := safefile.ReadPEM(a.CA)
		if err != nil {
			return nil, fmt.Errorf("etcd TLS: CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("etcd TLS: CA file %s: no PEM certificate in it", a.CA)
		}
		return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
	}
	// etcd's TLSInfo reads the files itself, with os.ReadFile: check
	// first that each is one that can be read without hanging on a
	// FIFO or reading a device without end.
	for _, f := range []struct{ flag, path string }{{"--etcd-cert", a.Cert}, {"--etcd-key", a.Key}, {"--etcd-ca", a.CA}} {
		if f.path == "" {
			continue
		}
		if _, err := safefile.ReadPEM(f.path); err != nil {
			return nil, fmt.Errorf("etcd TLS: %s: %w", f.flag, err)
		}
	}
	tc, err := info.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("etcd TLS: %w", err)
	}
	return tc, nil
}

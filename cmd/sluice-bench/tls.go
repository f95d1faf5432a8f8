//go:build linux

package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// The TLS figures: sluice's tls handler in front of a plaintext upstream
// (tls → proxy) against HAProxy (`bind ... ssl crt`) and nginx's stream
// module (`listen ... ssl`), each terminating TLS on one core in front of
// the same upstream: full and resumed handshakes per CPU-second with an
// ECDSA P-256 and an RSA 2048 certificate, and CPU per GB through
// established connections.

const (
	sluiceTLST  = "sluice-tls"
	haproxyTLST = "haproxy-tls"
	nginxTLST   = "nginx-tls"
)

// tls13Suites is offered by HAProxy and nginx in this order, with server
// preference, as crypto/tls picks: AES-128-GCM on a CPU with AES-NI. Left
// to OpenSSL's default they would pick AES-256-GCM, and the figures
// would compare ciphers, not servers.
const tls13Suites = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"

const sluiceTLSConfig = configHeader + `  - name: tls
    network: tcp
    address: %s
    idle_timeout: 5m
    tcp_keepalive: 0
    chain:
      - handler: tls
        certificates:
          - cert: %s
            key: %s
      - handler: proxy
        upstreams: ["tcp://%s"]
        tcp_keepalive: 0
`

// benchPair is a certificate written for the servers: cert and key
// apart (sluice, nginx) and in one file (HAProxy).
type benchPair struct{ cert, key, combined string }

// writeBenchPair makes a self-signed certificate for bench.test with an
// ECDSA P-256 or RSA 2048 key.
func (e *env) writeBenchPair(kind string) (benchPair, error) {
	var key crypto.Signer
	var err error
	if kind == "rsa" {
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	} else {
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		return benchPair{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "bench.test"},
		DNSNames:     []string{"bench.test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(30 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return benchPair{}, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return benchPair{}, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	p := benchPair{cert: e.path(kind + ".pem"), key: e.path(kind + ".key"), combined: e.path(kind + ".combined.pem")}
	for path, data := range map[string][]byte{p.cert: certPEM, p.key: keyPEM, p.combined: append(certPEM, keyPEM...)} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return benchPair{}, err
		}
	}
	return p, nil
}

// tlsTargets starts the upstream on the load CPU and the three
// terminators with the kind ("ecdsa" or "rsa") of certificate. ok is
// false when this sluice build has no tls handler.
func (e *env) tlsTargets(kind string) (ts []*target, ok bool, err error) {
	pair, err := e.writeBenchPair(kind)
	if err != nil {
		return nil, false, err
	}
	up, err := e.startGo("upstream", "loop", loadCPU)
	if err != nil {
		return nil, false, err
	}
	cfg := func(addr string) []byte { return fmt.Appendf(nil, sluiceTLSConfig, addr, pair.cert, pair.key, up.addr) }
	if has, err := e.sluiceAccepts("TLS", "tls", cfg); !has || err != nil {
		return nil, false, err
	}
	s, err := e.startSluiceOn(sluiceTLST, e.o.sluice, sluiceTLST+"-"+kind+".yaml", nil, cfg)
	if err != nil {
		return nil, false, err
	}
	ts = append(ts, s)
	if e.haveHAProxy() {
		h, err := e.startHAProxyWith(haproxyTLST, up.addr, false, "ssl crt "+pair.combined+" ciphersuites "+tls13Suites, "")
		if err != nil {
			return nil, false, err
		}
		ts = append(ts, h)
	} else {
		e.note("HAProxy TLS comparison skipped: %q not found", e.o.haproxy)
	}
	if _, err := exec.LookPath(e.o.nginx); err == nil {
		n, err := e.startNginx(nginxTLST, up.addr, pair)
		if err != nil {
			return nil, false, err
		}
		ts = append(ts, n)
	} else {
		e.note("nginx TLS comparison skipped: %q not found (apt-get install nginx libnginx-mod-stream)", e.o.nginx)
	}
	for _, t := range ts {
		st, err := tlsProbe(t.addr)
		if err != nil {
			return nil, false, fmt.Errorf("%s: %w", t.name, err)
		}
		e.note("%s with %s: %s", t.name, kind, st)
	}
	return ts, true, nil
}

// startNginx runs nginx's stream module with one process (no master,
// so that the measured PID is the one doing the work) terminating TLS
// in front of upstream.
func (e *env) startNginx(name, upstream string, pair benchPair) (*target, error) {
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	prefix := e.path(name)
	if err := os.MkdirAll(filepath.Join(prefix, "logs"), 0o755); err != nil {
		return nil, err
	}
	load := ""
	if _, err := os.Stat(e.o.nginxStream); err == nil {
		load = "load_module " + e.o.nginxStream + ";\n"
	}
	cfg := fmt.Sprintf(`%sworker_processes 1;
master_process off;
daemon off;
pid %s/nginx.pid;
error_log stderr warn;
worker_rlimit_nofile 100000;
events {
    worker_connections 50000;
}
stream {
    server {
        listen %s ssl;
        ssl_certificate %s;
        ssl_certificate_key %s;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_conf_command Ciphersuites %s;
        ssl_prefer_server_ciphers on;
        ssl_session_tickets on;
        proxy_pass %s;
    }
}
`, load, prefix, addr, pair.cert, pair.key, tls13Suites, upstream)
	path := filepath.Join(prefix, "nginx.conf")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	return e.startServer(name, addr, e.o.nginx, "-p", prefix, "-c", path, "-e", "stderr")
}

func tlsTargetNames(ts []*target) []string { return names(ts) }

var tlsBaselines = []string{haproxyTLST, nginxTLST}

const tlsBaselineLabel = "the better of HAProxy and nginx"

// tlsHandshakeFigures measures full and resumed handshakes with each
// kind of certificate.
func tlsHandshakeFigures(e *env) error {
	for _, kind := range []string{"ecdsa", "rsa"} {
		ts, ok, err := e.tlsTargets(kind)
		if err != nil || !ok {
			return err
		}
		label := map[string]string{"ecdsa": "ECDSA P-256", "rsa": "RSA 2048"}[kind]
		for _, resume := range []bool{false, true} {
			c, err := e.rounds(ts, func(addr string, d time.Duration) (loadResult, error) {
				return tlsHandshakes(addr, 4, d, resume)
			}, handshakeMetrics)
			if err != nil {
				return err
			}
			what, key, target := "full handshakes", "full", 0.8
			if resume {
				what, key, target = "resumed handshakes", "resumed", 0
			}
			sec := fmt.Sprintf("TLS %s, %s certificate (TLS 1.3, X25519; connect, handshake, one 64-byte round trip through to the upstream, close; 4 clients)", what, label)
			e.res.Figures = append(e.res.Figures,
				figure(c, "tls."+kind+"."+key+".per_cpu", sec, what+" per CPU-second", "hs/CPU-s", "per_cpu_s", false, tlsTargetNames(ts),
					ratioSpec{sluiceTLST, tlsBaselines, tlsBaselineLabel, target, 0}),
				figure(c, "tls."+kind+"."+key+".rate", sec, what+" per second", "hs/s", "rate", false, tlsTargetNames(ts),
					ratioSpec{sluiceTLST, tlsBaselines, tlsBaselineLabel, 0, 0}),
			)
		}
		e.stopAll()
	}
	return nil
}

// tlsBulkFigures measures CPU per GB through established connections.
func tlsBulkFigures(e *env) error {
	const sec = "TLS bulk (AES-128-GCM; 4 established connections each writing 16 KiB blocks through to the upstream echo and reading them back)"
	start := func() ([]*target, bool, error) { return e.tlsTargets("ecdsa") }
	return e.section(start, func(addr string, d time.Duration) (loadResult, error) {
		return tlsThroughput(addr, 4, 16<<10, d)
	}, throughputMetrics, func(c *collector, ts []string) []Figure {
		return []Figure{
			figure(c, "tls.bulk.cpu", sec, "server CPU per GB", "ms/GB", "cpu_ms_per_GB", true, ts,
				ratioSpec{sluiceTLST, tlsBaselines, tlsBaselineLabel, 1.0, 0}),
			figure(c, "tls.bulk.rate", sec, "throughput", "MB/s", "MBps", false, ts,
				ratioSpec{sluiceTLST, tlsBaselines, tlsBaselineLabel, 0, 0}),
		}
	})
}

func handshakeMetrics(r loadResult, cpu time.Duration) map[string]float64 {
	m := map[string]float64{"rate": r.ops / r.elapsed.Seconds()}
	if cpu > 0 && r.ops > 0 {
		m["per_cpu_s"] = r.ops / cpu.Seconds()
	}
	return m
}

package etcdsource

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/sluice-dev/sluice/internal/etcdtest"
)

// TestTLS: with --etcd-ca, sluice reads and publishes over TLS to an
// etcd whose certificate that CA signed; without it, it cannot.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	caFile, certFile, keyFile, pool := writeCerts(t, dir)
	etcd := etcdtest.StartTLS(t, &etcdtest.TLS{CertFile: certFile, KeyFile: keyFile,
		Client: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}})
	tg, _ := ParseURL(etcd.URL(key))
	ctx := context.Background()

	cli, err := NewClient(tg, Access{CA: caFile})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	rev, err := Publish(ctx, cli, key, []byte(doc1), nil)
	if err != nil {
		t.Fatalf("publish over TLS: %v", err)
	}
	doc, _, err := New(tg, cli, nil, hclog.NewNullLogger()).Get(ctx)
	if err != nil || doc.Revision != rev {
		t.Fatalf("get over TLS: %+v, %v", doc, err)
	}

	plain, err := NewClient(tg, Access{})
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if _, _, err := New(tg, plain, nil, hclog.NewNullLogger()).Get(ctx); err == nil {
		t.Error("a plain-TCP client read from a TLS etcd")
	}
}

// writeCerts makes a CA and a certificate it signs for 127.0.0.1, as
// PEM files in dir.
func writeCerts(t *testing.T, dir string) (caFile, certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sluice test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "etcd"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, typ string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pool = x509.NewCertPool()
	pool.AddCert(ca)
	return write("ca.pem", "CERTIFICATE", caDER), write("etcd.pem", "CERTIFICATE", der), write("etcd-key.pem", "EC PRIVATE KEY", keyDER), pool
}

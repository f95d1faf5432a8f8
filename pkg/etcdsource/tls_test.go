package etcdsource

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"path/filepath"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/sluice-dev/sluice/internal/etcdtest"
	"github.com/sluice-dev/sluice/internal/testcert"
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
	ca := testcert.NewCA(t, "sluice test CA")
	caFile = filepath.Join(dir, "ca.pem")
	testcert.WriteFile(t, caFile, ca.PEM)
	certFile, keyFile = ca.Issue(t, testcert.Options{Names: []string{"127.0.0.1"}, CN: "etcd"}).Write(t, dir, "etcd")
	return caFile, certFile, keyFile, ca.Pool()
}

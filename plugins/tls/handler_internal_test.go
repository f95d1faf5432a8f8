package tlsterm

import (
	"context"
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/sluice-dev/sluice/internal/testcert"
	"github.com/sluice-dev/sluice/pkg/chain"
)

func TestPick(t *testing.T) {
	pairs := []*pair{
		{names: []string{"first.test"}},
		{names: []string{"*.wild.test"}},
		{names: []string{"exact.wild.test"}},
		{names: []string{"10.0.0.1"}},
	}
	for _, tc := range []struct {
		sni  string
		want int
	}{
		{"", 0},
		{"first.test", 0},
		{"FIRST.TEST.", 0},
		{"a.wild.test", 1},
		{"exact.wild.test", 2}, // exact beats the wildcard listed before it
		{"wild.test", 0},       // a wildcard covers one label, not none
		{"a.b.wild.test", 0},   // nor two
		{"unknown.test", 0},
	} {
		if got := pick(pairs, tc.sni); got != pairs[tc.want] {
			t.Errorf("pick(%q) = %v, want %v", tc.sni, got.names, pairs[tc.want].names)
		}
	}
}

// TestNextSeesTheTLSConn: the rest of the chain gets the *tls.Conn, whose
// ConnectionState is what the route handler matches sni and alpn on.
func TestNextSeesTheTLSConn(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.NewCA(t, "root")
	cert, key := ca.Issue(t, testcert.Options{Names: []string{"a.test"}}).Write(t, dir, "a")
	h := &Handler{Certificates: []Certificate{{Cert: cert, Key: key}}, ALPN: []string{"h2", "x-sluice"}}
	if err := h.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := h.Provision(chain.ProvisionContext{Listener: "t", Network: "tcp", Logger: hclog.NewNullLogger()}); err != nil {
		t.Fatal(err)
	}
	defer h.Close()

	var got tls.ConnectionState
	next := chain.StreamHandlerFunc(func(_ context.Context, c *chain.Conn) error {
		cs, ok := c.Conn.(interface{ ConnectionState() tls.ConnectionState })
		if !ok {
			t.Errorf("next got a %T, not a connection with ConnectionState", c.Conn)
			return nil
		}
		got = cs.ConnectionState()
		_, err := c.Write([]byte("ok"))
		return err
	})
	server, client := net.Pipe()
	defer client.Close()
	c := chain.NewConn(server, 1, "t", 0, hclog.NewNullLogger())
	done := make(chan error, 1)
	go func() { done <- h.WrapStream(next).ServeStream(context.Background(), c) }()

	tc := tls.Client(client, &tls.Config{ServerName: "a.test", RootCAs: ca.Pool(), NextProtos: []string{"x-sluice"}})
	_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 2)
	if _, err := tc.Read(buf); err != nil || string(buf) != "ok" {
		t.Fatalf("read %q, %v", buf, err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got.ServerName != "a.test" || got.NegotiatedProtocol != "x-sluice" || !got.HandshakeComplete {
		t.Errorf("next saw server name %q, protocol %q, complete %v", got.ServerName, got.NegotiatedProtocol, got.HandshakeComplete)
	}
	notes := map[any]any{}
	a := c.Annotations()
	for i := 0; i+1 < len(a); i += 2 {
		notes[a[i]] = a[i+1]
	}
	if notes["sni"] != "a.test" || notes["alpn"] != "x-sluice" || notes["tls_version"] != "TLS 1.3" {
		t.Errorf("annotations = %v", a)
	}
}

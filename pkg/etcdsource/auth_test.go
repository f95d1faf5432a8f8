package etcdsource

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/sluice-dev/sluice/internal/etcdtest"
)

// TestAuth: with etcd's auth on, a client without the user's password
// is refused, one with it reads and publishes.
func TestAuth(t *testing.T) {
	etcd := etcdtest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	admin := etcd.Client()
	defer admin.Close()
	if _, err := admin.UserAdd(ctx, "root", "s3cret"); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.UserGrantRole(ctx, "root", "root"); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.AuthEnable(ctx); err != nil {
		t.Fatal(err)
	}
	tg, _ := ParseURL(etcd.URL(key))
	get := func(a Access) error {
		cli, err := NewClient(tg, a)
		if err != nil {
			return err
		}
		defer cli.Close()
		src := New(tg, cli, nil, hclog.NewNullLogger())
		if _, err := Publish(ctx, cli, key, []byte(doc1), nil); err != nil {
			return err
		}
		doc, _, err := src.Get(ctx)
		if err == nil && string(doc.Data) != doc1 {
			err = errors.New("read back another document")
		}
		return err
	}
	if err := get(Access{}); err == nil {
		t.Error("an anonymous client published with auth on")
	}
	if err := get(Access{Username: "root", Password: "wrong"}); err == nil || !strings.Contains(err.Error(), "authentication failed") {
		t.Errorf("a wrong password: %v, want authentication failed", err)
	}
	if err := get(Access{Username: "root", Password: "s3cret"}); err != nil {
		t.Errorf("with the password: %v", err)
	}
}

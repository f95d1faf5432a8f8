//go:build linux

package proxy

import (
	"context"
	"errors"
	"net"
	"strings"
	"syscall"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/sluice-dev/sluice/internal/testnet"
	"github.com/sluice-dev/sluice/pkg/chain"
	"github.com/sluice-dev/sluice/pkg/registry"
)

// TestTCPKeepAliveOption: upstream connections get tcp_keepalive, 15s
// unless said otherwise and none with 0; a value the kernel cannot take
// is refused under its key.
func TestTCPKeepAliveOption(t *testing.T) {
	ln := testnet.Listen(t, "tcp")
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	for _, tc := range []struct {
		opt     any // nil: unset
		on, idl int
	}{{nil, 1, 15}, {"0", 0, 0}, {"90s", 1, 90}} {
		opts := map[string]any{"upstreams": []any{"tcp://" + ln.Addr().String()}}
		if tc.opt != nil {
			opts["tcp_keepalive"] = tc.opt
		}
		built, errs := registry.New(Name, "tcp", opts)
		if len(errs) > 0 {
			t.Fatal(errors.Join(errs...))
		}
		h := built.(*Handler)
		if err := h.Provision(chain.ProvisionContext{Listener: "t", Network: "tcp", Logger: hclog.NewNullLogger()}); err != nil {
			t.Fatal(err)
		}
		c, err := h.dialer.DialContext(context.Background(), "tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		rc, _ := c.(*net.TCPConn).SyscallConn()
		var on, idle int
		_ = rc.Control(func(fd uintptr) {
			on, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE)
			idle, _ = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE)
		})
		_ = c.Close()
		_ = h.Close()
		if on != tc.on || (on == 1 && idle != tc.idl) {
			t.Errorf("tcp_keepalive %v: keepalive %d idle %d, want %d %d", tc.opt, on, idle, tc.on, tc.idl)
		}
	}
	for opt, want := range map[string]string{"-5s": "must not be negative", "500ms": "at least 1s"} {
		_, errs := registry.New(Name, "tcp", map[string]any{"upstreams": []any{"tcp://127.0.0.1:1"}, "tcp_keepalive": opt})
		if err := errors.Join(errs...); err == nil || !strings.Contains(err.Error(), "tcp_keepalive") || !strings.Contains(err.Error(), want) {
			t.Errorf("tcp_keepalive %s: error %v, want one naming tcp_keepalive: %s", opt, err, want)
		}
	}
}

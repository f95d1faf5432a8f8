//go:build linux

package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
)

// The baseline servers: the simplest goroutine-per-connection echo servers
// Go offers. sluice's echo is judged against the cheaper of the two.
var variants = map[string]func(*net.TCPConn){
	// iocopy is io.Copy(c, c): on Linux the runtime splices socket to
	// socket through a pipe, so bulk data is never copied to user space,
	// but every small message pays two splice calls.
	"iocopy": func(c *net.TCPConn) {
		_, _ = io.Copy(c, c)
	},
	// loop is a plain read/write loop with a 16 KiB buffer per connection.
	"loop": func(c *net.TCPConn) {
		plainLoop(c)
	},
	// marker greets each connection with one 'M' byte and then echoes. The
	// reload benchmark proxies to it to tell a new chain from the old one.
	// pp reads a PROXY protocol header, then echoes: the upstream of the
	// PROXY protocol figures, behind sluice's and HAProxy's send-proxy.
	"pp": func(c *net.TCPConn) {
		r := bufio.NewReader(c)
		if _, err := proxyproto.Read(r); err != nil {
			return
		}
		if n := r.Buffered(); n > 0 {
			b, _ := r.Peek(n)
			if _, err := c.Write(b); err != nil {
				return
			}
		}
		plainLoop(c)
	},
	// hello drops a TLS ClientHello record, then echoes: the upstream of
	// the route figures, whose clients all start with one.
	"hello": dropHello,
	"marker": func(c *net.TCPConn) {
		if _, err := c.Write([]byte{'M'}); err != nil {
			return
		}
		plainLoop(c)
	},
}

func plainLoop(c *net.TCPConn) {
	buf := make([]byte, 16<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func serveCmd(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	variant := fs.String("variant", "loop", "iocopy, loop, marker, pp or hello (echo servers); goproxy, rawproxy or rawloop (proxies to -upstream)")
	addr := fs.String("addr", "127.0.0.1:0", "address to listen on")
	upstream := fs.String("upstream", "", "the upstream of a proxy variant (IPv4 address and port)")
	var prof profiler
	prof.flags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := prof.start(); err != nil {
		return err
	}
	prof.stopOnTerm(nil)
	serve, ok := variants[*variant]
	proxy, isProxy := proxyVariants[*variant]
	if !ok && !isProxy {
		return fmt.Errorf("serve: unknown variant %q", *variant)
	}
	if isProxy && *upstream == "" {
		return fmt.Errorf("serve: variant %s needs -upstream", *variant)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	// The orchestrator reads the bound address from the first line.
	fmt.Println(ln.Addr().String())
	tl := ln.(*net.TCPListener)
	if isProxy {
		return proxy(context.Background(), tl, *upstream)
	}
	for {
		c, err := tl.AcceptTCP()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			// Out of descriptors and the like: back off, never spin.
			fmt.Fprintln(os.Stderr, "serve: accept:", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		go func() {
			defer c.Close()
			serve(c)
			_ = c.CloseWrite()
		}()
	}
}

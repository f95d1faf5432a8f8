//go:build linux

package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Two baseline proxies for the proxy connection rate: they bound what a
// Go program pays per proxied connection, so that sluice's figure can be
// read against Go itself as well as against HAProxy.
//
//   - goproxy is the smallest proxy Go's net package offers: a goroutine
//     per connection that dials the upstream and copies both ways with
//     io.Copy, half-closing each side at EOF. No deadlines, no counting,
//     no chain: what is left is Go's net and scheduler.
//   - rawproxy does the same work in one goroutine on an epoll instance of
//     its own, with non-blocking sockets and no net.Conn: accept4, socket,
//     connect, read, write, shutdown and close, as HAProxy's event loop
//     does. It handles what the bench's loads need (partial writes, EOF in
//     either direction, errors close the pair) and nothing more. It makes
//     its calls as a Go program usually does (golang.org/x/sys/unix, which
//     goes through the runtime's entersyscall/exitsyscall) and waits in
//     epoll_wait, except for the reads and writes.
//   - rawloop is rawproxy with every system call made by RawSyscall, and
//     the loop parked in Go's poller between its turns (its epoll instance
//     registered there, as sluice's event loop's is) instead of blocking a
//     thread in epoll_wait. A call through entersyscall that lasts longer
//     than the runtime monitor's 20 µs tick (a loopback connect runs the
//     whole handshake inside the call; a write or shutdown wakes the peer)
//     has its processor taken and handed to another thread; the pair of
//     them says what that costs per connection.
//
// Both disable TCP keepalive, as sluice and HAProxy do in the figures
// they are compared with.

// A proxy variant serves ln until ctx ends (tests end it; serve never
// does).
var proxyVariants = map[string]func(ctx context.Context, ln *net.TCPListener, upstream string) error{
	"goproxy": goProxy,
	"rawproxy": func(ctx context.Context, ln *net.TCPListener, upstream string) error {
		return rawProxy(ctx, ln, upstream, false)
	},
	"rawloop": func(ctx context.Context, ln *net.TCPListener, upstream string) error {
		return rawProxy(ctx, ln, upstream, true)
	},
}

func goProxy(ctx context.Context, ln *net.TCPListener, upstream string) error {
	d := net.Dialer{KeepAlive: -1}
	stop := context.AfterFunc(ctx, func() { _ = ln.Close() })
	defer stop()
	for {
		c, err := ln.AcceptTCP()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			fmt.Fprintln(os.Stderr, "goproxy: accept:", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		_ = c.SetKeepAlive(false)
		go func() {
			defer c.Close()
			u, err := d.Dial("tcp", upstream)
			if err != nil {
				return
			}
			uc := u.(*net.TCPConn)
			defer uc.Close()
			done := make(chan struct{})
			go func() {
				defer close(done)
				_, _ = io.Copy(uc, c)
				_ = uc.CloseWrite()
			}()
			_, _ = io.Copy(c, uc)
			_ = c.CloseWrite()
			<-done
		}()
	}
}

// rawPair is one proxied connection of rawProxy: fd[0] the client,
// fd[1] the upstream. pend[i] holds bytes waiting to be written to fd[i];
// eof[i] is set once fd[i] has been read to its end, hup[i] once epoll
// said fd[i]'s peer hung up: from then on a short read no longer proves
// fd[i] drained, since its end is still to be read and no new edge will
// say so.
type rawPair struct {
	fd        [2]int
	connected bool
	pend      [2][]byte
	eof       [2]bool
	hup       [2]bool
	shut      [2]bool
	// stalled[i]: reading fd[i] stopped with maxPend bytes waiting for
	// the other side.
	stalled [2]bool
	// outWatched: the client's events include EPOLLOUT.
	outWatched bool
}

const readEvents = unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLET

type rawLoop struct {
	ep    int
	pairs map[int]*rawPair
	buf   []byte
	raw   bool // every call by RawSyscall (rawloop)
}

func rawProxy(ctx context.Context, ln *net.TCPListener, upstream string, raw bool) error {
	ap, err := netip.ParseAddrPort(upstream)
	if err != nil || !ap.Addr().Is4() {
		return fmt.Errorf("rawproxy: upstream %q: an IPv4 address and port", upstream)
	}
	up := &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	// The listening socket is the one the caller bound; the loop takes
	// a duplicate of its descriptor, and ln's own is closed so that Go's
	// poller no longer watches the socket: each new connection would
	// wake it too.
	f, err := ln.File()
	if err != nil {
		return err
	}
	defer f.Close() // and keeps f, whose finalizer would close lfd, alive
	if err := ln.Close(); err != nil {
		return err
	}
	lfd := int(f.Fd())
	if err := unix.SetNonblock(lfd, true); err != nil {
		return err
	}
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return err
	}
	if !raw {
		defer unix.Close(ep) // rawloop's is closed by serveInPoller
	}
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, lfd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(lfd)}); err != nil {
		return err
	}
	l := &rawLoop{ep: ep, pairs: map[int]*rawPair{}, buf: make([]byte, 16<<10), raw: raw}
	defer l.closeAll()
	if raw {
		return l.serveInPoller(ctx, lfd, up)
	}
	// A context that can end is looked at every 100 ms; the bench's
	// never ends, and its loop sleeps until there is work.
	wait := -1
	if ctx.Done() != nil {
		wait = 100
	}
	evs := make([]unix.EpollEvent, 256)
	for ctx.Err() == nil {
		n, err := unix.EpollWait(ep, evs, wait)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("rawproxy: epoll_wait: %w", err)
		}
		l.events(evs[:n], lfd, up)
	}
	return nil
}

func (l *rawLoop) events(evs []unix.EpollEvent, lfd int, up *unix.SockaddrInet4) {
	for _, ev := range evs {
		fd := int(ev.Fd)
		if fd == lfd {
			l.accept(lfd, up)
			continue
		}
		if p := l.pairs[fd]; p != nil {
			l.event(p, fd, ev.Events)
		}
	}
}

// serveInPoller runs the loop's turns inside a RawConn.Read of its epoll
// instance: between turns the goroutine parks in Go's poller, and the
// thread is free for the runtime. ctx's end wakes it with a deadline.
func (l *rawLoop) serveInPoller(ctx context.Context, lfd int, up *unix.SockaddrInet4) error {
	// Non-blocking first: os.NewFile registers only such a descriptor
	// with Go's poller.
	if err := unix.SetNonblock(l.ep, true); err != nil {
		_ = unix.Close(l.ep)
		return err
	}
	epf := os.NewFile(uintptr(l.ep), "epoll")
	rc, err := epf.SyscallConn()
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { _ = epf.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	evs := make([]unix.EpollEvent, 256)
	var ferr error
	err = rc.Read(func(uintptr) bool {
		for {
			r, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(l.ep), uintptr(unsafe.Pointer(&evs[0])), uintptr(len(evs)), 0, 0, 0)
			switch {
			case e == unix.EINTR:
				continue
			case e != 0:
				ferr = fmt.Errorf("rawloop: epoll_wait: %w", e)
				return true
			case r == 0:
				return false // park until the epoll instance is readable
			}
			l.events(evs[:r], lfd, up)
		}
	})
	_ = epf.Close()
	if ferr != nil {
		return ferr
	}
	if ctx.Err() != nil {
		return nil
	}
	return err
}

func (l *rawLoop) accept(lfd int, up *unix.SockaddrInet4) {
	for {
		c, err := l.accept4(lfd)
		if err == unix.EAGAIN {
			return
		}
		if err != nil {
			// Out of descriptors: the listener stays readable (level
			// triggered), so back off rather than spin.
			fmt.Fprintln(os.Stderr, "rawproxy: accept:", err)
			time.Sleep(10 * time.Millisecond)
			return
		}
		u, err := l.socket()
		if err != nil {
			l.closeFD(c)
			continue
		}
		l.noDelay(c)
		l.noDelay(u)
		if err := l.connect(u, up); err != nil && err != unix.EINPROGRESS {
			l.closeFD(c)
			l.closeFD(u)
			continue
		}
		p := &rawPair{fd: [2]int{c, u}}
		l.pairs[c], l.pairs[u] = p, p
		// The upstream is watched for writing from the start (that is
		// how its connect completes), the client only once a write to
		// it comes back short (flush): a socket that is writable is
		// otherwise one more event per connection.
		l.epollCtl(unix.EPOLL_CTL_ADD, c, readEvents)
		l.epollCtl(unix.EPOLL_CTL_ADD, u, readEvents|unix.EPOLLOUT)
	}
}

// event handles what epoll reported for fd, one side of p.
func (l *rawLoop) event(p *rawPair, fd int, events uint32) {
	i := 0
	if fd == p.fd[1] {
		i = 1
	}
	if events&unix.EPOLLERR != 0 {
		l.close(p)
		return
	}
	if events&(unix.EPOLLRDHUP|unix.EPOLLHUP) != 0 {
		p.hup[i] = true
	}
	if events&unix.EPOLLOUT != 0 {
		if i == 1 {
			p.connected = true
		}
		if !l.flush(p, i) {
			return
		}
		// Reading the other side stopped while i took no more bytes;
		// edge-triggered, nothing else will say it may go on.
		if p.stalled[1-i] && len(p.pend[i]) == 0 {
			p.stalled[1-i] = false
			if !l.pump(p, 1-i, i) {
				return
			}
		}
	}
	if events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP) != 0 {
		if !l.pump(p, i, 1-i) {
			return
		}
	}
	if p.eof[0] && p.eof[1] && len(p.pend[0]) == 0 && len(p.pend[1]) == 0 {
		l.close(p)
	}
}

// maxPend bounds the bytes a pair keeps for a side that takes no more
// (an upstream still connecting, a client reading slowly).
const maxPend = 64 << 10

// pump reads p.fd[i] and passes the bytes on to p.fd[j] (or keeps them
// for it, while j is connecting or behind) until i runs dry (a short read
// proves it, unless i's peer hung up), i ends, or maxPend bytes wait for
// j: then i is stalled until j drains. It returns false when it closed
// the pair.
func (l *rawLoop) pump(p *rawPair, i, j int) bool {
	if i == 1 && !p.connected {
		return true // nothing to read before the connect completes
	}
	for !p.eof[i] {
		direct := len(p.pend[j]) == 0 && (j == 0 || p.connected)
		if !direct && len(p.pend[j]) >= maxPend {
			p.stalled[i] = true
			return true
		}
		n, err := rawRecv(p.fd[i], l.buf)
		switch {
		case err == unix.EAGAIN:
			return true
		case err != nil:
			l.close(p)
			return false
		case n == 0:
			p.eof[i] = true
			return l.flush(p, j)
		}
		w := 0
		if direct {
			if w, err = rawSend(p.fd[j], l.buf[:n]); err == unix.EAGAIN {
				w = 0
			} else if err != nil {
				l.close(p)
				return false
			}
		}
		if w < n {
			p.pend[j] = append(p.pend[j], l.buf[w:n]...)
			if direct {
				l.watchWrites(p, j)
			}
		}
		if n < len(l.buf) && !p.hup[i] {
			return true
		}
	}
	return true
}

// flush writes what waits for p.fd[j]. Once all went and the other side
// has ended, it half-closes j, unless j has ended too: then the pair is
// done, and closing it sends the FIN (one system call fewer, as HAProxy
// does). It returns false when it closed the pair.
func (l *rawLoop) flush(p *rawPair, j int) bool {
	if j == 1 && !p.connected {
		return true
	}
	for len(p.pend[j]) > 0 {
		w, err := rawSend(p.fd[j], p.pend[j])
		if err == unix.EAGAIN {
			l.watchWrites(p, j)
			return true
		}
		if err != nil {
			l.close(p)
			return false
		}
		p.pend[j] = p.pend[j][w:]
	}
	p.pend[j] = nil
	if p.eof[1-j] && !p.eof[j] && !p.shut[j] {
		p.shut[j] = true
		l.shutdown(p.fd[j])
	}
	return true
}

// watchWrites adds EPOLLOUT to the client's events once a write to it
// came back short; the upstream has it from the start.
func (l *rawLoop) watchWrites(p *rawPair, j int) {
	if j == 0 && !p.outWatched {
		p.outWatched = true
		l.epollCtl(unix.EPOLL_CTL_MOD, p.fd[0], readEvents|unix.EPOLLOUT)
	}
}

func (l *rawLoop) closeAll() {
	for _, p := range l.pairs {
		l.close(p)
	}
}

func (l *rawLoop) close(p *rawPair) {
	for _, fd := range p.fd {
		delete(l.pairs, fd)
		l.closeFD(fd) // closing removes it from the epoll set
	}
}

// rawRecv and rawSend cannot block (the sockets are non-blocking), so they
// skip the runtime's entersyscall as sluice's own event loop does.
func rawRecv(fd int, p []byte) (int, error) {
	r, _, e := unix.RawSyscall6(unix.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

func rawSend(fd int, p []byte) (int, error) {
	r, _, e := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), unix.MSG_NOSIGNAL, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

// The loop's other system calls: through x/sys/unix (rawproxy), or by
// RawSyscall (rawloop). None of them blocks: the sockets are non-blocking.

func (l *rawLoop) accept4(lfd int) (int, error) {
	if !l.raw {
		fd, _, err := unix.Accept4(lfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		return fd, err
	}
	r, _, e := unix.RawSyscall6(unix.SYS_ACCEPT4, uintptr(lfd), 0, 0, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0)
	return rawFD(r, e)
}

func (l *rawLoop) socket() (int, error) {
	const typ = unix.SOCK_STREAM | unix.SOCK_NONBLOCK | unix.SOCK_CLOEXEC
	if !l.raw {
		return unix.Socket(unix.AF_INET, typ, 0)
	}
	r, _, e := unix.RawSyscall(unix.SYS_SOCKET, unix.AF_INET, typ, 0)
	return rawFD(r, e)
}

func (l *rawLoop) noDelay(fd int) {
	if !l.raw {
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		return
	}
	one := int32(1)
	unix.RawSyscall6(unix.SYS_SETSOCKOPT, uintptr(fd), unix.IPPROTO_TCP, unix.TCP_NODELAY, uintptr(unsafe.Pointer(&one)), 4, 0)
}

func (l *rawLoop) connect(fd int, sa *unix.SockaddrInet4) error {
	if !l.raw {
		return unix.Connect(fd, sa)
	}
	rsa := unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: sa.Addr}
	binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&rsa.Port))[:], uint16(sa.Port))
	_, _, e := unix.RawSyscall(unix.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(&rsa)), unsafe.Sizeof(rsa))
	if e != 0 {
		return e
	}
	return nil
}

func (l *rawLoop) shutdown(fd int) {
	if !l.raw {
		_ = unix.Shutdown(fd, unix.SHUT_WR)
		return
	}
	unix.RawSyscall(unix.SYS_SHUTDOWN, uintptr(fd), unix.SHUT_WR, 0)
}

func (l *rawLoop) closeFD(fd int) {
	if !l.raw {
		_ = unix.Close(fd)
		return
	}
	unix.RawSyscall(unix.SYS_CLOSE, uintptr(fd), 0, 0)
}

func (l *rawLoop) epollCtl(op, fd int, events uint32) {
	ev := unix.EpollEvent{Events: events, Fd: int32(fd)}
	if !l.raw {
		_ = unix.EpollCtl(l.ep, op, fd, &ev)
		return
	}
	unix.RawSyscall6(unix.SYS_EPOLL_CTL, uintptr(l.ep), uintptr(op), uintptr(fd), uintptr(unsafe.Pointer(&ev)), 0, 0)
}

func rawFD(r uintptr, e unix.Errno) (int, error) {
	if e != 0 {
		return -1, e
	}
	return int(r), nil
}

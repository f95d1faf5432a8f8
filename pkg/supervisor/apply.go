package supervisor

import (
	"context"
	"fmt"
	"io/fs"
	"sort"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-dev/sluice/pkg/chain"
	"github.com/sluice-dev/sluice/pkg/config"
	"github.com/sluice-dev/sluice/pkg/listener"
	"github.com/sluice-dev/sluice/pkg/registry"
)

// step is one listener's part of a pending Apply.
type step struct {
	r      *runner
	gen    *generation
	fresh  bool   // r was bound by this Apply
	mode   uint32 // Unix socket mode to set on a kept socket; 0: leave
	socket string // for the mode's error message
}

// Apply makes cfg the running config, as one transaction. First every
// chain is built and every new socket bound; if anything fails, what was
// built and bound is closed again and the running config is untouched.
// Then, with nothing left that can fail:
//
//   - a listener whose network and address are kept keeps its socket
//     (even when renamed); if anything else changed, new connections get
//     the new chain and open ones finish on theirs;
//   - a new address is served (already bound) before the old one closes;
//   - a listener that is gone stops accepting; its connections finish.
//
// Connections on a retired chain or a removed listener run until they
// end, or for up to reload.drain_timeout when it is set.
//
// Apply is serialized; it is the one path for the first start and for
// every reload trigger. A config with the running one's hash is a no-op.
func (s *Supervisor) Apply(ctx context.Context, cfg *config.Config) (Summary, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return Summary{}, ErrClosed
	}
	if s.cfg != nil && s.cfg.Hash != "" && s.cfg.Hash == cfg.Hash {
		return Summary{Unchanged: true}, nil
	}

	var steps []step
	claimed := make(map[string]bool, len(cfg.Listeners))
	abort := func(err error) (Summary, error) {
		for _, st := range steps {
			if st.fresh {
				_ = st.r.ln.Close()
			}
			st.gen.cancel()
			_ = chain.CloseAll(st.gen.handlers)
		}
		return Summary{}, err
	}
	for i := range cfg.Listeners {
		l := cfg.Listeners[i]
		key := l.BindKey()
		claimed[key] = true
		r, kept := s.runners[key]
		if kept {
			if cur := r.gen.Load().cfg; cur.Hash() == l.Hash() {
				continue
			}
		}
		g, err := s.build(i, l)
		if err != nil {
			return abort(err)
		}
		st := step{r: r, gen: g, fresh: !kept}
		if kept {
			st.mode, st.socket = modeChange(r.gen.Load().cfg, l)
		} else {
			ln, err := listen(ctx, l)
			if err != nil {
				g.cancel()
				_ = chain.CloseAll(g.handlers)
				return abort(fmt.Errorf("listeners[%d] (%s): %w", i, l.Name, err))
			}
			st.r = &runner{s: s, key: key, ln: ln, goKeepAlive: listener.GoKeepAlive(ln)}
		}
		steps = append(steps, st)
	}

	// Commit: nothing below can fail the transaction.
	drain := cfg.Reload.DrainTimeout
	// A new bound applies to the chains earlier reloads retired too, so
	// that an operator can end old connections by setting one.
	for _, g := range s.gens.list() {
		g.bound(drain)
	}
	for _, st := range steps {
		s.gens.add(st.gen)
		if st.fresh {
			st.r.gen.Store(st.gen)
			s.runners[st.r.key] = st.r
			st.r.start()
			st.gen.log.Info("listener up", "address", st.r.ln.Addr().String())
			continue
		}
		if st.mode != 0 {
			if err := chmodSocket(st.r, st.mode); err != nil {
				st.gen.log.Error("changing the socket file's mode", "path", st.socket, "error", err)
			}
		}
		old := st.r.gen.Swap(st.gen)
		old.retire(true, drain)
	}
	for key, r := range s.runners {
		if claimed[key] {
			continue
		}
		g := r.gen.Load()
		g.addr = r.ln.Addr().String()
		r.stop()
		g.log.Info("listener down", "address", g.cfg.Address, "connections", g.active())
		g.retire(true, drain)
		delete(s.runners, key)
	}
	sum := summarize(s.cfg, cfg)
	s.cfg = cfg
	return sum, nil
}

// build makes listener i's generation: each handler decoded, validated and
// provisioned, then the chain compiled. Nothing is bound.
func (s *Supervisor) build(i int, l config.Listener) (*generation, error) {
	log := s.log.Named("listener").With("listener", l.Name, "network", l.Network)
	idle := l.IdleTimeout
	if !l.IsStream() {
		idle = flowIdle(l)
	}
	pctx := chain.ProvisionContext{
		Listener:    l.Name,
		Network:     l.Network,
		IdleTimeout: idle,
		Logger:      log,
		Metrics:     prometheus.WrapRegistererWith(prometheus.Labels{"listener": l.Name}, s.metrics.Registry),
		Shared:      s.shared,
	}
	handlers, err := registry.Build(pctx, l.Chain)
	if err != nil {
		return nil, fmt.Errorf("listeners[%d].%w", i, err)
	}
	fail := func(err error) (*generation, error) {
		_ = chain.CloseAll(handlers)
		return nil, err
	}
	var (
		stream chain.StreamHandler
		packet chain.PacketHandler
	)
	if l.IsStream() {
		stream, err = chain.Compile(handlers)
	} else {
		packet, err = chain.CompilePacket(handlers)
	}
	if err != nil {
		return fail(fmt.Errorf("listeners[%d].chain: %w", i, err))
	}
	open, ok := s.open[l.Name]
	if !ok {
		open = new(atomic.Int64)
		s.open[l.Name] = open
	}
	g := newGeneration(l, log, handlers, stream, s.metrics.ForListener(l.Name), open)
	g.packet = packet
	g.forced = &s.forced
	if s.warns == nil {
		s.warns = make(map[string]*warnLimiter)
	}
	if g.warns = s.warns[l.Name]; g.warns == nil {
		g.warns = new(warnLimiter)
		s.warns[l.Name] = g.warns
	}
	return g, nil
}

func specOf(l config.Listener) listener.Spec {
	spec := listener.Spec{Name: l.Name, Network: l.Network, Address: l.Address}
	if l.Network == "unix" {
		spec.Mode = socketMode(l)
	}
	return spec
}

// socketMode is the mode a Unix listener's socket file should have.
func socketMode(l config.Listener) uint32 {
	if l.Socket.Mode == "" {
		return listener.DefaultUnixMode()
	}
	m, _ := config.ParseMode(l.Socket.Mode) // validated when the config was loaded
	return m
}

// modeChange returns the mode to apply when a kept Unix socket's
// socket.mode changed.
func modeChange(old, l config.Listener) (uint32, string) {
	// A removed socket.mode goes back to the default, as the file would
	// have it had sluice started with this config.
	if l.Network != "unix" || old.Socket.Mode == l.Socket.Mode {
		return 0, ""
	}
	return socketMode(l), l.Address
}

func chmodSocket(r *runner, mode uint32) error {
	if c, ok := r.ln.(interface{ Chmod(fs.FileMode) error }); ok {
		return c.Chmod(fs.FileMode(mode))
	}
	return nil
}

// summarize names the listeners added, removed and changed from old to cur.
func summarize(old, cur *config.Config) Summary {
	var sum Summary
	before := map[string]string{}
	if old != nil {
		for i := range old.Listeners {
			before[old.Listeners[i].Name] = old.Listeners[i].Hash()
		}
	}
	for i := range cur.Listeners {
		l := &cur.Listeners[i]
		h, ok := before[l.Name]
		switch {
		case !ok:
			sum.Added = append(sum.Added, l.Name)
		case h != l.Hash():
			sum.Changed = append(sum.Changed, l.Name)
		}
		delete(before, l.Name)
	}
	for name := range before {
		sum.Removed = append(sum.Removed, name)
	}
	sort.Strings(sum.Removed)
	return sum
}

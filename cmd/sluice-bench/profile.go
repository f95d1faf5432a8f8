//go:build linux

package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/sluice-dev/sluice/pkg/config"
	"github.com/sluice-dev/sluice/pkg/logging"
	"github.com/sluice-dev/sluice/pkg/metrics"
	"github.com/sluice-dev/sluice/pkg/reload"
	"github.com/sluice-dev/sluice/pkg/supervisor"
	_ "github.com/sluice-dev/sluice/plugins/all" // the same handlers as bin/sluice
)

// profiler writes a CPU profile from start to stop and a heap profile
// (allocations since start included) at stop.
type profiler struct {
	cpu, heap string
	f         *os.File
}

func (p *profiler) flags(fs *flag.FlagSet) {
	fs.StringVar(&p.cpu, "cpuprofile", "", "write a CPU profile here when stopped by SIGTERM")
	fs.StringVar(&p.heap, "memprofile", "", "write a heap profile here when stopped by SIGTERM")
}

func (p *profiler) start() error {
	if p.heap != "" {
		runtime.MemProfileRate = 64 << 10
	}
	if p.cpu == "" {
		return nil
	}
	f, err := os.Create(p.cpu)
	if err != nil {
		return err
	}
	p.f = f
	return pprof.StartCPUProfile(f)
}

func (p *profiler) stop() {
	if p.f != nil {
		pprof.StopCPUProfile()
		_ = p.f.Close()
	}
	if p.heap != "" {
		if f, err := os.Create(p.heap); err == nil {
			_ = pprof.Lookup("allocs").WriteTo(f, 0)
			_ = f.Close()
		}
	}
}

// stopOnTerm stops the profiler and exits when SIGTERM or SIGINT arrives;
// then is run first (a drain, say).
func (p *profiler) stopOnTerm(then func()) {
	if p.cpu == "" && p.heap == "" {
		return
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sigs
		if then != nil {
			then()
		}
		p.stop()
		os.Exit(0)
	}()
}

// sluiceCmd runs sluice's supervisor in this process, like `sluice run`,
// so that it can be profiled: sluice-bench sluice -c FILE -cpuprofile F.
func sluiceCmd(args []string) error {
	fs := flag.NewFlagSet("sluice", flag.ContinueOnError)
	path := fs.String("c", "", "config file")
	var prof profiler
	prof.flags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	log := logging.New(cfg.Log, os.Stderr)
	m := metrics.New()
	sup := supervisor.New(log.Named("supervisor"), m)
	rl := reload.New(*path, sup, log, m)
	ctx := context.Background()
	if err := prof.start(); err != nil {
		return err
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	prof.stopOnTerm(func() {
		sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		_ = sup.Shutdown(sctx)
	})
	if err := rl.Start(ctx, cfg); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	for range hup {
		_, _ = rl.Reload(ctx, "signal")
	}
	return nil
}

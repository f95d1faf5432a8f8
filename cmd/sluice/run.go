package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"

	"github.com/sluice-dev/sluice/pkg/admin"
	"github.com/sluice-dev/sluice/pkg/config"
	"github.com/sluice-dev/sluice/pkg/etcdsource"
	"github.com/sluice-dev/sluice/pkg/logging"
	"github.com/sluice-dev/sluice/pkg/metrics"
	"github.com/sluice-dev/sluice/pkg/reload"
	"github.com/sluice-dev/sluice/pkg/sdnotify"
	"github.com/sluice-dev/sluice/pkg/supervisor"
	"github.com/sluice-dev/sluice/pkg/upgrade"
	"github.com/sluice-dev/sluice/pkg/version"
)

func newRunCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the appliance in the foreground",
		Long: `run serves the config's listeners in the foreground, logging to stderr.

The config is reloaded when its file changes (unless --watch=false) and on
SIGHUP. SIGTERM or SIGINT stops accepting, lets open connections finish for
up to shutdown.drain_timeout, closes the rest and exits 0; a second SIGINT
exits at once. SIGUSR2 upgrades: the binary at the path sluice was started
with runs with every listening socket, and once it serves, this process
stops accepting, drains like on SIGTERM and exits 0.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			watch, _ := cmd.Flags().GetBool("watch")
			return run(cmd, configPath(cmd), watch)
		},
	}
	cmd.Flags().Bool("watch", true, "reload when the config file (or etcd key) changes (SIGHUP reloads either way)")
	addEtcdFlags(cmd)
	cmd.Flags().String("cache", "", "with -c etcd://...: where to keep the last config applied, for a start while etcd is down (default $STATE_DIRECTORY/"+
		etcdsource.DefaultCacheName+", else "+etcdsource.DefaultCacheDir+"/"+etcdsource.DefaultCacheName+")")
	return cmd
}

func run(cmd *cobra.Command, path string, watch bool) error {
	src, cfg, err := loadConfig(context.Background(), cmd, path, runCache(cmd))
	if err != nil {
		printErrors(cmd, err)
		return exitError{exitFailed}
	}
	defer src.close()
	// A log line never waits for stderr (a stalled journald, a reader
	// gone): the Output queues and drops instead. And a reader gone must
	// not kill the process: with SIGPIPE ignored a write to it fails
	// with EPIPE, which the Output counts, instead of ending sluice and
	// every connection with it.
	signal.Ignore(syscall.SIGPIPE)
	out := logging.NewOutput(os.Stderr)
	defer out.Close(2 * time.Second)
	log := logging.New(cfg.Log, out)
	for _, name := range config.UnknownEnv(os.Environ()) {
		log.Warn("environment variable is not a config override; ignored", "variable", name, "overrides", config.EnvOverrides())
	}
	m := metrics.New()
	m.CountLogDrops(out.Dropped)
	sup := supervisor.New(log.Named("supervisor"), m)
	// Until the first config is applied, Shutdown must still drain (and
	// say it drains) for the configured time: see the "cannot start" path.
	sup.SetDrainTimeout(cfg.Shutdown.DrainTimeout)

	// Signals are caught before anything binds, so that a SIGTERM during
	// startup still drains instead of killing the process.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT, upgradeSignal)
	defer signal.Stop(sigs)

	ctx := context.Background()
	// Before anything binds: a process started by an upgrade takes the
	// sockets handed over first.
	upg, err := upgrade.New(log.Named("upgrade"))
	if err != nil {
		log.Error("cannot start", "error", err)
		return exitError{exitFailed}
	}
	inheritSockets(log, cfg)
	notify := sdnotify.New(log.Named("sdnotify"))
	rl := reload.New(path, sup, log, m)
	rl.AddHook(notify) // RELOADING=1 then READY=1 around every reload
	src.attach(rl, m, log)
	// The admin endpoint is a reload stage: it follows admin.address on
	// every reload, and an address it cannot bind fails start or reload.
	// It is closed last, so that /metrics stays up while connections drain.
	adm := admin.New(admin.Options{Log: log.Named("admin"), Metrics: m, Supervisor: sup, Reloader: rl, Upgrader: upg, Source: src.adminStatus()})
	defer func() { _ = adm.Close() }()
	rl.AddStage(adm)
	if err := rl.Start(ctx, cfg); err != nil {
		log.Error("cannot start", "config", path, "error", err)
		_ = sup.Shutdown(ctx)
		return exitError{exitFailed}
	}
	src.started()
	upg.AddSockets(sup)
	upg.AddSockets(adm)
	upg.OnHandOver(adm.StopAccepting)
	if err := upg.Ready(); err != nil {
		log.Error("upgrade: cannot tell the previous process", "error", err)
	}
	log.Info("sluice started", "version", version.Version, "config", path, "listeners", len(cfg.Listeners), "sha256", cfg.Hash[:12],
		"pid", os.Getpid(), "upgraded", upg.Upgraded())
	watcher := src.watch(ctx, rl, log, watch)
	hups := startSignalReloads(ctx, rl)
	notify.Ready(fmt.Sprintf("serving %d listeners", len(cfg.Listeners)))

	// No reload may start once draining begins, and one under way is not
	// waited for before the drain: it begins at once. Once the drain is
	// over, a reload still running gets a bounded time to end.
	stopReloads := func() {
		watcher.stop()
		hups.stop()
	}
	drained := func(err error) error {
		if !watcher.wait(2*time.Second) || !hups.wait(2*time.Second) {
			log.Warn("a reload is still under way; exiting without waiting for it")
		}
		return err
	}
	var upgrading upgrades
	for {
		select {
		case sig := <-sigs:
			switch sig {
			case syscall.SIGHUP:
				hups.request()
			case upgradeSignal:
				upgrading.start(upg)
			case syscall.SIGTERM, syscall.SIGINT:
				notify.Stopping("draining connections")
				stopReloads()
				adm.SetDraining()
				upg.Stop() // an upgrade in progress ends; its process is killed
				upgrading.wait()
				log.Info("signal received; draining", "signal", sig.String())
				return drained(shutdown(log, sup, sigs, out))
			}
		case <-upg.Done():
			upgrading.wait()
			return drained(handOver(log, notify, upg, stopReloads, adm, sup, sigs, out))
		}
	}
}

// startWatch runs the config file watcher in a goroutine owned by run;
// nil when the watch is off.
func startWatch(ctx context.Context, rl *reload.Reloader, log hclog.Logger, enabled bool) *background {
	if !enabled {
		log.Info("config file watch disabled; reload with SIGHUP")
		return nil
	}
	w, err := reload.NewWatcher(rl)
	if err != nil {
		log.Error("cannot watch the config file; reload with SIGHUP", "error", err)
		return nil
	}
	return goBackground(ctx, w.Run)
}

// shutdown drains in the background while watching for a second SIGINT,
// which exits at once.
func shutdown(log hclog.Logger, sup *supervisor.Supervisor, sigs <-chan os.Signal, out *logging.Output) error {
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = sup.Shutdown(context.Background())
	}()
	for {
		select {
		case <-done:
			return nil
		case sig := <-sigs:
			if sig == syscall.SIGINT {
				log.Warn("second interrupt; exiting without draining")
				out.Close(time.Second) // the line above, and those before it
				fmt.Fprintln(os.Stderr, "sluice: interrupted twice, exiting now")
				os.Exit(exitFailed)
			}
			if sig == syscall.SIGHUP {
				log.Info("reload ignored: shutting down")
			}
		}
	}
}

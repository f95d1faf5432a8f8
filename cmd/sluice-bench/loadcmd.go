//go:build linux

package main

import (
	"flag"
	"fmt"
	"time"
)

// loadCmd runs one scenario against an address and prints what the
// client saw: for poking at a server by hand (under strace or perf, say).
func loadCmd(args []string) error {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	scenario := fs.String("scenario", "pingpong", "pingpong, throughput or connrate")
	addr := fs.String("addr", "", "server address")
	d := fs.Duration("duration", time.Second, "how long")
	conns := fs.Int("conns", 0, "connections (default: the scenario's)")
	pp := fs.Bool("pp", false, "start each connection with a PROXY v2 header, in its own write")
	hello := fs.Bool("hello", false, "start each connection with a TLS ClientHello, as the route figures do")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *pp {
		ppTargets.Store(*addr, true)
	}
	if *hello {
		helloTargets.Store(*addr, true)
	}
	var r loadResult
	var err error
	switch *scenario {
	case "pingpong":
		r, err = pingPong(*addr, or(*conns, 20), 64, *d)
	case "throughput":
		r, err = throughput(*addr, or(*conns, 10), 16<<10, *d)
	case "connrate":
		r, err = connRate(*addr, or(*conns, 4), *d)
	default:
		return fmt.Errorf("load: unknown scenario %q", *scenario)
	}
	if err != nil {
		return err
	}
	fmt.Printf("%s: %.0f ops in %v (%.0f/s)", *scenario, r.ops, r.elapsed.Round(time.Millisecond), r.ops/r.elapsed.Seconds())
	if len(r.lat) > 0 {
		fmt.Printf(", p50 %v p99 %v", percentile(r.lat, 0.5), percentile(r.lat, 0.99))
	}
	fmt.Println()
	return nil
}

func or(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

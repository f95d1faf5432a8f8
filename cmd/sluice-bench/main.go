//go:build linux

// Command sluice-bench is sluice's benchmark harness: baseline servers,
// a load generator and the orchestrator behind `make bench`.
//
//	sluice-bench serve -variant iocopy|loop|marker -addr 127.0.0.1:0
//	sluice-bench serve -variant goproxy|rawproxy|rawloop -addr 127.0.0.1:0 -upstream HOST:PORT
//	sluice-bench run [-rounds 5] [-duration 1s] [-only echo,proxy,...]
//
// run pins the servers it starts to CPU 0 and itself (the load generator)
// to CPU 1, measures every figure alternately against its baseline in the
// same run, and writes docs/benchmarks.md, a JSON file and a PNG chart.
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serveCmd(os.Args[2:])
	case "sluice":
		err = sluiceCmd(os.Args[2:])
	case "run":
		err = runCmd(os.Args[2:])
	case "load":
		err = loadCmd(os.Args[2:])
	case "report":
		err = reportCmd(os.Args[2:])
	case "-h", "--help", "help":
		usage()
		return
	default:
		fmt.Fprintf(os.Stderr, "sluice-bench: unknown command %q\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "sluice-bench:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprint(os.Stderr, `usage:
  sluice-bench serve -variant iocopy|loop|marker -addr HOST:PORT   a baseline echo server
  sluice-bench serve -variant goproxy|rawproxy|rawloop -addr HOST:PORT -upstream HOST:PORT   a baseline proxy
  sluice-bench sluice -c FILE [-cpuprofile F]   sluice's supervisor in-process, for profiling
  sluice-bench run [flags]      run the benchmarks and write the report (see run -h)
  sluice-bench load -scenario pingpong|throughput|connrate -addr HOST:PORT   one scenario, by hand
  sluice-bench report [flags]   rewrite the report and chart from a results JSON file
`)
}

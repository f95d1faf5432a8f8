//go:build linux

package main

import "time"

// What every measured section does alike: start its targets, measure
// them in rounds with one load, turn the rounds into figures. A scenario
// file says only what is its own: targets, figure keys, section title,
// ratios.

// startTargets starts a section's targets. ok is false when the section
// is skipped (this sluice build lacks a handler); the start notes why.
type startTargets func() (ts []*target, ok bool, err error)

// always is a start that never skips.
func always(start func() ([]*target, error)) startTargets {
	return func() ([]*target, bool, error) {
		ts, err := start()
		return ts, err == nil, err
	}
}

// loadFunc runs one load against addr for d.
type loadFunc func(addr string, d time.Duration) (loadResult, error)

// section starts the targets, measures them with load in rounds and adds
// the figures figs makes of the rounds.
func (e *env) section(start startTargets, load loadFunc, metrics func(loadResult, time.Duration) map[string]float64, figs func(c *collector, ts []string) []Figure) error {
	ts, ok, err := start()
	if err != nil || !ok {
		return err
	}
	c, err := e.rounds(ts, load, metrics)
	if err != nil {
		return err
	}
	e.res.Figures = append(e.res.Figures, figs(c, names(ts))...)
	return nil
}

// connRateSection measures the connection rate of 4 clients (connect,
// one 64-byte round trip, close) as figures key.connrate.rate and
// key.connrate.cpu, with the ratios rate and cpu.
func (e *env) connRateSection(start startTargets, key, sec string, rate, cpu []ratioSpec) error {
	return e.section(start, func(addr string, d time.Duration) (loadResult, error) {
		return connRate(addr, 4, d)
	}, connRateMetrics, func(c *collector, ts []string) []Figure {
		return []Figure{
			figure(c, key+".connrate.rate", sec, "connections per second", "conn/s", "rate", false, ts, rate...),
			figure(c, key+".connrate.cpu", sec, "server CPU per connection", "µs/conn", "cpu_us_per_conn", true, ts, cpu...),
		}
	})
}

// pingPongSection measures 20 connections ping-ponging 64-byte messages
// as figures key.pingpong.*: the rate and latencies with the ratios
// others, the CPU per ping-pong with cpu.
func (e *env) pingPongSection(start startTargets, key, sec string, others, cpu []ratioSpec) error {
	return e.section(start, func(addr string, d time.Duration) (loadResult, error) {
		return pingPong(addr, 20, 64, d)
	}, pingPongMetrics, func(c *collector, ts []string) []Figure {
		return []Figure{
			figure(c, key+".pingpong.rate", sec, "ping-pong rate", "ops/s", "rate", false, ts, others...),
			figure(c, key+".pingpong.p50", sec, "latency p50", "µs", "p50", true, ts, others...),
			figure(c, key+".pingpong.p99", sec, "latency p99", "µs", "p99", true, ts, others...),
			figure(c, key+".pingpong.p999", sec, "latency p99.9", "µs", "p999", true, ts, others...),
			figure(c, key+".pingpong.cpu", sec, "server CPU per ping-pong", "µs/op", "cpu_us_per_op", true, ts, cpu...),
		}
	})
}

// streamLoad is throughput's load: 10 connections, 16 KiB writes.
func streamLoad(addr string, d time.Duration) (loadResult, error) {
	return throughput(addr, 10, 16<<10, d)
}

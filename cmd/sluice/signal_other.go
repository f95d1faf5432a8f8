//go:build !unix

package main

import "syscall"

// upgradeSignal never arrives where there is no SIGUSR2: upgrades in
// place are a Unix feature (descriptors passed to a new process).
var upgradeSignal = syscall.Signal(-1)

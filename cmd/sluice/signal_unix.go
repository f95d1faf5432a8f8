//go:build unix

package main

import "syscall"

// upgradeSignal starts an upgrade, as it does for nginx and HAProxy's
// master.
var upgradeSignal = syscall.SIGUSR2

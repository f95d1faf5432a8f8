package plugintest

import (
	"context"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/testtool"
)

// Socat returns the path of socat. Without it the test is skipped with a
// hint, except in CI (CI=true), where a missing socat is a failure: the
// tests that use it are how a user tries sluice.
func Socat(t testing.TB) string {
	t.Helper()
	return testtool.Need(t, "socat", "socat")
}

// SocatUDP runs "socat -t WAIT - UDP:addr" with input on its stdin, as a
// user tries a UDP listener, and returns what it printed: the datagrams
// that came back within wait of the input's end. Each run is a new
// client socket, so a new source port.
func SocatUDP(t testing.TB, addr, input string, wait time.Duration) string {
	t.Helper()
	socat := Socat(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	secs := strconv.FormatFloat(wait.Seconds(), 'f', -1, 64)
	cmd := exec.CommandContext(ctx, socat, "-t", secs, "-", "UDP:"+addr)
	cmd.Stdin = strings.NewReader(input)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("socat: %v\n%s", err, errOut.String())
	}
	return out.String()
}

package e2e

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/admintest"
	"github.com/sluice-dev/sluice/internal/etcdtest"
)

// TestEtcdValidate: sluice validate reads the key named by -c or
// $SLUICE_CONFIG, reports a missing key or an unreachable etcd with exit
// 1, and takes SLUICE_ETCD_* for what they are, not stray overrides.
func TestEtcdValidate(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test: skipped with -short")
	}
	etcd := etcdtest.Start(t)
	url := etcd.URL(fleetKey)
	etcd.Put(fleetKey, fleetDoc(1))
	dead := "etcd://" + admintest.FreeAddr(t, "127.0.0.1") + fleetKey

	for _, tc := range []struct {
		name   string
		args   []string
		env    []string
		code   int
		stdout string
		stderr string
	}{
		{name: "flag", args: []string{"-c", url}, stdout: "config OK: 1 listeners"},
		{name: "env", env: []string{"SLUICE_CONFIG=" + url, "SLUICE_ETCD_USERNAME="}, stdout: "config OK: 1 listeners"},
		{name: "missing key", args: []string{"-c", etcd.URL("/nope.yaml")}, code: 1,
			stderr: etcd.URL("/nope.yaml") + ": cannot read config: etcd key /nope.yaml does not exist"},
		{name: "unreachable", args: []string{"-c", dead}, code: 1, stderr: dead + ": cannot read config: etcd unreachable"},
		{name: "bad url", args: []string{"-c", "etcd://127.0.0.1:2379"}, code: 1, stderr: "no key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(binary, append([]string{"validate"}, tc.args...)...)
			cmd.Env = append(os.Environ(), tc.env...)
			var out, errb bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errb
			err := cmd.Run()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.code || !strings.Contains(out.String(), tc.stdout) || !strings.Contains(errb.String(), tc.stderr) {
				t.Errorf("exit %d, stdout %q, stderr %q; want %d, %q, %q", code, out.String(), errb.String(), tc.code, tc.stdout, tc.stderr)
			}
			if strings.Contains(errb.String(), "SLUICE_ETCD") {
				t.Errorf("SLUICE_ETCD_* warned about as a stray override: %s", errb.String())
			}
		})
	}
}

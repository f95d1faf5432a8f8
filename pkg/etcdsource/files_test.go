package etcdsource

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestFilesThatCannotBeRead: a FIFO or a device given for a TLS file or
// the password file is an error naming the flag, not a hang or a read
// without end (etcd's own TLS loader would do either).
func TestFilesThatCannotBeRead(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	pem := filepath.Join(dir, "x.pem")
	if err := os.WriteFile(pem, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		a    Access
		want string
	}{
		{Access{CA: "/dev/zero"}, "CA file: /dev/zero: not a regular file (a character device)"},
		{Access{Cert: fifo, Key: pem}, "--etcd-cert: " + fifo + ": not a regular file (a named pipe)"},
		{Access{Cert: pem, Key: "/dev/zero"}, "--etcd-key: /dev/zero: not a regular file"},
		{Access{Cert: pem, Key: pem, CA: fifo}, "--etcd-ca: " + fifo + ": not a regular file"},
	} {
		if _, err := tlsConfig(tc.a); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v; want %q", tc.a, err, tc.want)
		}
	}
	if _, err := ReadPasswordFile("/dev/zero"); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("password file /dev/zero: %v", err)
	}
}

package e2e

import (
	"context"
	"io"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/pkg/etcdsource"
)

// TestEtcdPublishUnderChurn: while connections churn through each of
// three instances, 20 publishes (each a new option on the same socket)
// cause no failed connect and no failed echo.
func TestEtcdPublishUnderChurn(t *testing.T) {
	etcd, _, fleet := startFleet(t)
	cli := etcd.Client()
	defer cli.Close()

	var connects, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, in := range fleet {
		sock := filepath.Join(in.dir, "echo.sock")
		wg.Add(1)
		go func() { // one churning client per instance; ends on stop
			defer wg.Done()
			buf := make([]byte, 64)
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := churnOnce(sock, buf); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
				connects.Add(1)
			}
		}()
	}
	const publishes = 20
	for i := range publishes {
		start := time.Now()
		rev, err := etcdsource.Publish(context.Background(), cli, fleetKey, []byte(fleetDoc(i+10)), nil)
		if err != nil {
			t.Fatal(err)
		}
		allApplied(t, start, rev, waitBound, fleet...)
	}
	close(stop)
	wg.Wait()
	t.Logf("%d publishes applied by 3 instances under churn: %d connections, %d failed", publishes, connects.Load(), failed.Load())
	if connects.Load() < 100 {
		t.Errorf("only %d connections churned: the test did not load the instances", connects.Load())
	}
	if n := failed.Load(); n != 0 {
		t.Errorf("%d of %d connections failed during the publishes; first: %v", n, connects.Load(), firstErr.Load())
	}
}

// churnOnce connects, echoes a few bytes and closes.
func churnOnce(sock string, buf []byte) error {
	c, err := net.DialTimeout("unix", sock, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("churn")); err != nil {
		return err
	}
	_, err = io.ReadFull(c, buf[:5])
	return err
}

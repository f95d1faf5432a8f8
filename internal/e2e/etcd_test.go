package e2e

import (
	"context"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/admintest"
	"github.com/sluice-dev/sluice/internal/etcdtest"
	"github.com/sluice-dev/sluice/pkg/etcdsource"
)

// applyBound is the promise: a publish is applied by every
// instance within a second.
const applyBound = time.Second

// startFleet runs etcd with the first document published and three
// instances on it.
func startFleet(t *testing.T) (*etcdtest.Server, string, []*instance) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test: skipped with -short")
	}
	etcd := etcdtest.Start(t)
	url := etcd.URL(fleetKey)
	rev := mustPublish(t, fleetDoc(1), url)
	root := t.TempDir()
	var fleet []*instance
	for _, name := range []string{"a", "b", "c"} {
		fleet = append(fleet, startInstance(t, name, url, filepath.Join(root, name)))
	}
	allApplied(t, time.Now(), rev, waitBound, fleet...)
	return etcd, url, fleet
}

// TestEtcdFleetPublish: three instances on one key apply every publish
// within a second; an invalid document is refused by sluice publish, and
// when put directly it is rejected by every instance, which keep
// serving; a stale --if-revision is refused; a deleted key keeps the
// running config.
func TestEtcdFleetPublish(t *testing.T) {
	etcd, url, fleet := startFleet(t)

	cli := etcd.Client()
	defer cli.Close()
	// Latency runs from the put's success (etcd has the change) to the
	// last instance running it: the put itself is etcd's fsync, which
	// on a shared disk says more about the disk than about sluice.
	const publishes = 50
	var lat []time.Duration
	var slowestPut time.Duration
	for i := range publishes {
		start := time.Now()
		rev, err := etcdsource.Publish(context.Background(), cli, fleetKey, []byte(fleetDoc(i+2)), nil)
		if err != nil {
			t.Fatal(err)
		}
		put := time.Now()
		slowestPut = max(slowestPut, put.Sub(start))
		d := allApplied(t, put, rev, waitBound, fleet...)
		if d > applyBound/2 {
			t.Logf("publish %d (revision %d): applied by all %v after the put", i, rev, d)
		}
		lat = append(lat, d)
	}
	slices.Sort(lat)
	p50, p99 := lat[len(lat)/2], lat[(len(lat)*99+99)/100-1]
	t.Logf("put to applied by all 3 instances, %d publishes: p50 %v, p99 %v, max %v (slowest put itself: %v)", publishes, p50, p99, lat[len(lat)-1], slowestPut)
	if p99 > applyBound {
		t.Errorf("p99 of put to applied by all: %v, want <= %v", p99, applyBound)
	}

	// An invalid document: refused by publish, nothing written.
	good := etcd.Revision(fleetKey)
	bad := strings.Replace(fleetDoc(99), "handler: echo", "handler: ech0", 1)
	code, _, stderr := publishCLI(t, bad, url)
	if code != 1 || !strings.Contains(stderr, `listeners[0].chain[0].handler: unknown handler "ech0"`) || !strings.Contains(stderr, "not published") {
		t.Errorf("publish of an invalid config: exit %d, stderr %q; want 1 and the key path", code, stderr)
	}
	if got := etcd.Revision(fleetKey); got != good {
		t.Errorf("invalid publish wrote the key: revision %d, was %d", got, good)
	}

	// The same document put directly (as etcdctl put would): every
	// instance rejects it as a failed reload and keeps serving the last
	// good one.
	etcd.Put(fleetKey, bad)
	for _, in := range fleet {
		r := in.mustLog("config reload failed", map[string]any{"trigger": "etcd"}, waitBound)
		if !strings.Contains(r["error"].(string), url+": listeners[0].chain[0].handler: unknown handler") {
			t.Errorf("%s: reload error %q does not name the URL and key path", in.name, r["error"])
		}
		if got := in.revision(t); got != good {
			t.Errorf("%s: running revision %d after an invalid put, want %d", in.name, got, good)
		}
		in.echo(t)
	}

	// Compare-and-swap: a publish from a stale revision is refused; from
	// the current one it goes through.
	code, _, stderr = publishCLI(t, fleetDoc(200), url, "--if-revision", "1")
	if code != 1 || !strings.Contains(stderr, "revision conflict") {
		t.Errorf("publish --if-revision 1 on a newer key: exit %d, stderr %q; want 1 and a conflict", code, stderr)
	}
	cur := etcd.Revision(fleetKey)
	rev := mustPublish(t, fleetDoc(201), url, "--if-revision", strconv.FormatInt(cur, 10))
	allApplied(t, time.Now(), rev, waitBound, fleet...)

	// A deleted key is a deleted file: a warning, the config stays.
	etcd.Delete(fleetKey)
	for _, in := range fleet {
		in.mustLog("etcd key does not exist; keeping the running config", nil, waitBound)
		in.echo(t)
		if got := in.revision(t); got != rev {
			t.Errorf("%s: running revision %d after the key was deleted, want %d", in.name, got, rev)
		}
		m := admintest.ScrapeMetrics(t, in.admin)
		if m.Must(t, "sluice_config_reloads_total", "result", "failure") != 1 {
			t.Errorf("%s: want exactly one failed reload (the invalid put)", in.name)
		}
	}
}

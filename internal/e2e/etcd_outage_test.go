package e2e

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/admintest"
	"github.com/sluice-dev/sluice/internal/etcdtest"
)

// outage is how long etcd stays down in TestEtcdOutage.
const outage = 10 * time.Second

// TestEtcdOutage: with etcd stopped for 10 s every instance keeps
// serving and says it lost etcd; an instance started meanwhile serves
// from its cache (one without a cache exits 1); once etcd is back a
// publish reaches all. Then one instance alone loses etcd (a cut
// proxy): a change made meanwhile reaches it when it reconnects, once.
func TestEtcdOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test: skipped with -short")
	}
	etcd := etcdtest.Start(t)
	url := etcd.URL(fleetKey)
	rev1 := mustPublish(t, fleetDoc(1), url)
	proxy := newCutProxy(t, etcd.Endpoint())
	root := t.TempDir()
	a := startInstance(t, "a", url, filepath.Join(root, "a"))
	b := startInstance(t, "b", url, filepath.Join(root, "b"))
	c := startInstance(t, "c", proxy.url(fleetKey), filepath.Join(root, "c"))
	allApplied(t, time.Now(), rev1, waitBound, a, b, c)

	// a stops, so that it can start again while etcd is down, from the
	// cache it wrote.
	a.stopGracefully()
	cache := filepath.Join(a.dir, "cache.yaml")

	etcd.Stop()
	down := time.Now()
	for _, in := range []*instance{b, c} {
		in.mustLog("etcd connection lost; keeping the running config and reconnecting", nil, waitBound)
		admintest.WaitFor(t, in.name+" reporting sluice_config_source_up 0", func() bool { return in.sourceUp(t) == 0 })
		if st, _ := in.status(); st.Source.Connected || st.Source.Revision != rev1 {
			t.Errorf("%s: /status source %+v while etcd is down; want connected false, revision %d", in.name, st.Source, rev1)
		}
		in.echo(t)
	}
	a = startInstance(t, "a", url, a.dir)
	r := a.mustLog("etcd unreachable; serving the cached config until it is back", nil, waitBound)
	if r["cache"] != cache || r["revision"] != float64(rev1) {
		t.Errorf("start from the cache: %v; want cache %s at revision %d", r, cache, rev1)
	}
	a.echo(t)
	if got := a.revision(t); got != rev1 {
		t.Errorf("a: revision %d from the cache, want %d", got, rev1)
	}
	// Without a cache, nothing to serve: exit 1, saying why.
	d := launchInstance(t, "d", url, filepath.Join(root, "d"))
	if code := d.wait(waitBound); code != 1 {
		t.Errorf("start without etcd and without a cache: exit %d, want 1", code)
	}
	if out := d.output(); !strings.Contains(out, "etcd unreachable") || !strings.Contains(out, "no cache at "+filepath.Join(d.dir, "cache.yaml")) {
		t.Errorf("start without etcd and without a cache: output %q does not say why", out)
	}
	for time.Since(down) < outage {
		for _, in := range []*instance{a, b, c} {
			in.echo(t)
		}
		time.Sleep(500 * time.Millisecond)
	}

	etcd.Restart()
	back := time.Now()
	rev2 := mustPublish(t, fleetDoc(2), url)
	t.Logf("after etcd restarted, applied by all 3 in %v", allApplied(t, back, rev2, waitBound, a, b, c))
	for _, in := range []*instance{a, b, c} {
		admintest.WaitFor(t, in.name+" reporting sluice_config_source_up 1", func() bool { return in.sourceUp(t) == 1 })
	}

	// c alone loses etcd; a change made meanwhile reaches it on
	// reconnect.
	proxy.cut()
	c.mustLog("etcd connection lost; keeping the running config and reconnecting", nil, waitBound)
	rev3 := mustPublish(t, fleetDoc(3), url)
	allApplied(t, time.Now(), rev3, waitBound, a, b)
	time.Sleep(time.Second)
	if got := c.revision(t); got != rev2 {
		t.Fatalf("c, cut off from etcd, runs revision %d; want still %d", got, rev2)
	}
	proxy.restore()
	t.Logf("after reconnecting, c applied the change made meanwhile in %v", allApplied(t, time.Now(), rev3, waitBound, c))
	c.echo(t)

	// Each change was applied once on each instance: no replay after a
	// restart or a reconnect.
	for _, in := range []*instance{b, c} {
		// The revision shows in /status as soon as it is applied; the
		// log line that says so may reach the test's reader a moment
		// later (c: 1 reload counted, though its log shows both).
		admintest.WaitFor(t, in.name+" logging its second reload", func() bool { return in.count("config reloaded") >= 2 })
		if n := in.count("config reloaded"); n != 2 {
			t.Errorf("%s: %d reloads, want 2 (revisions %d and %d)", in.name, n, rev2, rev3)
		}
		if n := in.count("config unchanged; nothing to do"); n != 0 {
			t.Errorf("%s: %d reloads of an unchanged config: a change was replayed", in.name, n)
		}
	}
}

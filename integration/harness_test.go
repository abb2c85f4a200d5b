// Tests of the Docker/Redis harness itself (internal/redisenv): they prove
// that the servers the integration tests rely on start, answer, fail in the
// ways the tests inject, and recover.
//
//	scripts/build-redis-image.sh        # once per machine
//	go test -race -count=1 -v ./...
package integration_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/limitkit/limitkit/integration/internal/redisenv"
	"github.com/redis/go-redis/v9"
)

func TestStandaloneSetGet(t *testing.T) {
	t.Parallel()
	start := time.Now()
	srv := redisenv.StartStandalone(t)
	t.Logf("standalone redis %s at %s, started in %v", srv.Version(), srv.Addr(), time.Since(start).Round(time.Millisecond))

	if !regexp.MustCompile(`^\d+\.\d+\.\d+`).MatchString(srv.Version()) {
		t.Errorf("Version() = %q, want a redis version like 7.0.15", srv.Version())
	}
	requirePrivateAddr(t, srv.Addr())

	rdb := srv.NewClient()
	ctx := t.Context()
	if err := rdb.Set(ctx, "greeting", "hello", 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	got, err := rdb.Get(ctx, "greeting").Result()
	if err != nil || got != "hello" {
		t.Fatalf("GET = %q, %v; want hello", got, err)
	}
	// The server must be memory-only, or Stop/Start would not lose state.
	save, err := rdb.ConfigGet(ctx, "save").Result()
	if err != nil || save["save"] != "" {
		t.Errorf("CONFIG GET save = %v, %v; want persistence off", save, err)
	}
}

func TestStandalonePauseAndRestart(t *testing.T) {
	t.Parallel()
	srv := redisenv.StartStandalone(t)
	rdb := srv.NewClient(func(o *redis.Options) {
		o.ReadTimeout = 300 * time.Millisecond
		o.MaxRetries = -1 // see each failure, do not hide it behind retries
	})
	ctx := t.Context()
	if err := rdb.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}

	// Paused: the connection stays open but no answer comes.
	srv.Pause()
	err := rdb.Get(ctx, "k").Err()
	var netErr net.Error
	if !errors.As(err, &netErr) || !netErr.Timeout() {
		t.Fatalf("GET on a paused server: err = %v, want a timeout", err)
	}
	srv.Unpause()
	if got, err := getEventually(t, rdb, "k"); err != nil || got != "v" {
		t.Fatalf("after Unpause: GET = %q, %v; want v (state kept)", got, err)
	}

	// Stopped: commands fail.
	srv.Stop()
	if err := rdb.Ping(ctx).Err(); err == nil {
		t.Fatal("PING on a stopped server succeeded")
	}
	// Restarted: the same client, still dialing the same address, finds an
	// empty server.
	restart := time.Now()
	srv.Start()
	t.Logf("restarted in %v", time.Since(restart).Round(time.Millisecond))
	_, err = getEventually(t, rdb, "k")
	if !errors.Is(err, redis.Nil) {
		t.Fatalf("after Start: GET k err = %v, want redis.Nil (state lost)", err)
	}
}

// getEventually retries GET until the server answers (the pool may hold
// connections broken by the fault) or a deadline passes.
func getEventually(t *testing.T, rdb *redis.Client, key string) (string, error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		v, err := rdb.Get(t.Context(), key).Result()
		if err == nil || errors.Is(err, redis.Nil) || time.Now().After(deadline) {
			return v, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestCluster(t *testing.T) {
	t.Parallel()
	start := time.Now()
	cl := redisenv.StartCluster(t)
	t.Logf("cluster of %d nodes (redis %s) ready in %v: %v",
		len(cl.Addrs()), cl.Version(), time.Since(start).Round(time.Millisecond), cl.Addrs())
	for _, a := range cl.Addrs() {
		requirePrivateAddr(t, a)
	}

	// Pipelines of 16,384 commands get 5s to be read, not NewClient's 1s,
	// which a loaded machine can miss with nothing wrong.
	rdb := cl.NewClient(func(o *redis.ClusterOptions) { o.ReadTimeout, o.WriteTimeout = 5*time.Second, 5*time.Second })
	ctx := t.Context()

	// The test's own slot function must agree with the server's, or "one key
	// per slot" below would not cover every slot.
	for _, k := range []string{"a", "user:42", "{tag}x", "x{}y", "rate:{1.2.3.4}:login"} {
		want, err := rdb.ClusterKeySlot(ctx, k).Result()
		if err != nil {
			t.Fatalf("CLUSTER KEYSLOT: %v", err)
		}
		if got := keySlot(k); int64(got) != want {
			t.Fatalf("keySlot(%q) = %d, server says %d", k, got, want)
		}
	}

	keys := keyPerSlot()
	setAll := func(gen int) error {
		_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, k := range keys {
				p.Set(ctx, k, gen, 0)
			}
			return nil
		})
		return err
	}
	// checkAll reads every key back and compares it with gen.
	checkAll := func(gen int) error {
		cmds, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, k := range keys {
				p.Get(ctx, k)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for i, c := range cmds {
			if got, err := c.(*redis.StringCmd).Int(); err != nil || got != gen {
				return fmt.Errorf("GET %s = %d, %v; want %d", keys[i], got, err, gen)
			}
		}
		return nil
	}
	if err := untilOK(t, rdb, func() error { return setAll(1) }); err != nil {
		t.Fatalf("writing one key per slot: %v", err)
	}
	// Make sure the replicas hold the writes before killing a master, so the
	// read-back after failover tests the promotion, not replication lag.
	err := rdb.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		n, err := m.Wait(ctx, 1, 5*time.Second).Result()
		if err == nil && n < 1 {
			err = fmt.Errorf("WAIT: %d replicas acknowledged", n)
		}
		return err
	})
	if err != nil {
		t.Fatalf("waiting for replication: %v", err)
	}

	victimKey := keys[len(keys)/2]
	killed := time.Now()
	addr := cl.KillMasterOwningKey(victimKey)
	t.Logf("killed master %s (owner of %q)", addr, victimKey)

	failCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := cl.WaitFailover(failCtx); err != nil {
		t.Fatalf("failover: %v", err)
	}
	failover := time.Since(killed)

	// The promoted replica serves the dead master's data, and writes resume,
	// through the same client once it has found the new master.
	if err := untilOK(t, rdb, func() error { return checkAll(1) }); err != nil {
		t.Fatalf("data not readable after failover: %v", err)
	}
	if err := untilOK(t, rdb, func() error { return setAll(2) }); err != nil {
		t.Fatalf("writes did not resume after failover: %v", err)
	}
	resumed := time.Since(killed)
	t.Logf("failover: cluster_state ok after %v; all %d keys read back and rewritten after %v",
		failover.Round(time.Millisecond), len(keys), resumed.Round(time.Millisecond))

	// A second failover, of another shard, works too: the harness tracks the
	// current masters, and 2 of the 3 masters serving slots still form the
	// majority that elects the replica.
	other := (slotShard(keySlot(victimKey)) + 1) % redisenv.Masters
	killed = time.Now()
	t.Logf("killed master %s of shard %d", cl.StopMaster(other), other)
	// Its own minute: the first failover and the rewrites may have used
	// most of the first one on a loaded machine.
	failCtx2, cancel2 := context.WithTimeout(ctx, 60*time.Second)
	defer cancel2()
	if err := cl.WaitFailover(failCtx2); err != nil {
		t.Fatalf("second failover: %v", err)
	}
	t.Logf("second failover: cluster_state ok after %v", time.Since(killed).Round(time.Millisecond))
	if err := untilOK(t, rdb, func() error { return setAll(3) }); err != nil {
		t.Fatalf("writes did not resume after the second failover: %v", err)
	}
	if err := untilOK(t, rdb, func() error { return checkAll(3) }); err != nil {
		t.Fatal(err)
	}
}

// untilOK retries op until it succeeds or a deadline passes. On each failure
// it asks the client to reload its slot map: go-redis does not do so by itself
// when a master stops answering (see redisenv.Cluster.NewClient), so a Redis
// store on Cluster has to do the same.
func untilOK(t *testing.T, rdb *redis.ClusterClient, op func() error) error {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for attempt := 1; ; attempt++ {
		err := op()
		if err == nil {
			if attempt > 1 {
				t.Logf("succeeded at attempt %d", attempt)
			}
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		rdb.ReloadState(t.Context())
		time.Sleep(100 * time.Millisecond)
	}
}

// slotShard maps a slot to the shard that initially owns it.
func slotShard(slot int) int { return slot * redisenv.Masters / 16384 }

// keyPerSlot returns one key for each of the 16384 slots.
func keyPerSlot() []string {
	keys := make([]string, 16384)
	found := 0
	for i := 0; found < len(keys); i++ {
		k := fmt.Sprintf("key:%d", i)
		if s := keySlot(k); keys[s] == "" {
			keys[s] = k
			found++
		}
	}
	return keys
}

// keySlot is Redis Cluster's HASH_SLOT: CRC16 (XMODEM) of the key, or of its
// {hash tag} if it has a non-empty one, modulo 16384.
func keySlot(key string) int {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	var crc uint16
	for i := 0; i < len(key); i++ {
		crc ^= uint16(key[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return int(crc) % 16384
}

// requirePrivateAddr checks that a server is reachable only on a private
// network or loopback, never on a public interface.
func requirePrivateAddr(t *testing.T, addr string) {
	t.Helper()
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("bad address %q: %v", addr, err)
	}
	ip := net.ParseIP(host)
	if ip == nil || !(ip.IsPrivate() || ip.IsLoopback()) {
		t.Fatalf("server address %s is not private or loopback", addr)
	}
}

// TestImageMissing checks that a missing image fails fast with the fix, and
// that nothing tries to pull it.
func TestImageMissing(t *testing.T) {
	redisenv.NewPool(t) // skip (or fail in CI) without Docker
	t.Setenv("REDIS_IMAGE", "limitkit-redis:does-not-exist")
	if got := redisenv.Image(); got != "limitkit-redis:does-not-exist" {
		t.Fatalf("Image() = %q, want $REDIS_IMAGE", got)
	}
	start := time.Now()
	r := runFatal(t, func(tb testing.TB) { redisenv.StartStandalone(tb) })
	if !r.failed || !strings.Contains(r.msg, "scripts/build-redis-image.sh") {
		t.Fatalf("StartStandalone with a missing image: failed=%v msg=%q; want a failure naming the build script", r.failed, r.msg)
	}
	// A pull with no registry in reach retries for far longer than a busy
	// engine takes to say the image is missing.
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("missing image reported after %v; it should not try a pull", d)
	}
}

// TestDockerUnreachable checks the skip-locally / fail-in-CI rule.
func TestDockerUnreachable(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
	t.Setenv("DOCKER_CERT_PATH", "")
	t.Setenv("DOCKER_MACHINE_NAME", "")

	t.Setenv("CI", "")
	r := runFatal(t, func(tb testing.TB) { redisenv.NewPool(tb) })
	if !r.skipped || r.failed || !strings.Contains(r.msg, "Docker") {
		t.Errorf("without CI: skipped=%v failed=%v msg=%q; want a skip explaining Docker is unreachable", r.skipped, r.failed, r.msg)
	}
	t.Setenv("CI", "true")
	r = runFatal(t, func(tb testing.TB) { redisenv.NewPool(tb) })
	if !r.failed || r.skipped {
		t.Errorf("with CI=true: skipped=%v failed=%v msg=%q; want a failure", r.skipped, r.failed, r.msg)
	}
}

// outcome is what a harness call did to its testing.TB.
type outcome struct {
	failed, skipped bool
	msg             string
}

// recorder is a testing.TB whose Fatal and Skip record the outcome and end
// the goroutine, like the real ones, instead of ending the calling test.
// Everything else (Helper, Cleanup, Context, Name, Logf) is the real test's.
type recorder struct {
	testing.TB
	mu sync.Mutex
	outcome
}

func (r *recorder) end(failed, skipped bool, msg string) {
	r.mu.Lock()
	r.failed, r.skipped, r.msg = r.failed || failed, r.skipped || skipped, msg
	r.mu.Unlock()
	runtime.Goexit()
}
func (r *recorder) Fatal(a ...any)            { r.end(true, false, fmt.Sprint(a...)) }
func (r *recorder) Fatalf(f string, a ...any) { r.end(true, false, fmt.Sprintf(f, a...)) }
func (r *recorder) FailNow()                  { r.end(true, false, "FailNow") }
func (r *recorder) Skip(a ...any)             { r.end(false, true, fmt.Sprint(a...)) }
func (r *recorder) Skipf(f string, a ...any)  { r.end(false, true, fmt.Sprintf(f, a...)) }
func (r *recorder) SkipNow()                  { r.end(false, true, "SkipNow") }
func (r *recorder) Helper()                   {}

func (r *recorder) Errorf(f string, a ...any) {
	r.mu.Lock()
	r.failed = true
	r.mu.Unlock()
	r.TB.Logf(f, a...)
}

func (r *recorder) Error(a ...any) { r.Errorf("%s", fmt.Sprint(a...)) }

func (r *recorder) Failed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failed
}

// runFatal runs f with a recorder on its own goroutine and reports what f did.
func runFatal(t *testing.T, f func(testing.TB)) outcome {
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.outcome
}

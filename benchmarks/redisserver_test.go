package benchmarks

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// benchRedis is the Redis a Redis cell runs against: a redis-server this
// file started for the benchmark, or the disposable database REDIS_URL
// names (flushed before every cell).
type benchRedis struct {
	client *redis.Client
	cmd    *exec.Cmd // nil for REDIS_URL
}

// startRedis gives b a Redis until b ends: REDIS_URL's, or a redis-server
// on a free port of 127.0.0.1 without persistence, killed at the end (and,
// on Linux, if the benchmark binary dies). It skips b when there is
// neither.
//
// Every library's client is this one, with go-redis's defaults (a pool of
// ten connections per GOMAXPROCS) and ContextTimeoutEnabled, as
// redisstore's documentation asks.
func startRedis(b *testing.B) *benchRedis {
	b.Helper()
	if url := os.Getenv("REDIS_URL"); url != "" {
		opt, err := redis.ParseURL(url)
		if err != nil {
			b.Fatalf("REDIS_URL: %v", err)
		}
		opt.ContextTimeoutEnabled = true
		r := &benchRedis{client: redis.NewClient(opt)}
		b.Cleanup(func() { r.client.Close() })
		return r
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if _, err := os.Stat("/usr/bin/redis-server"); err != nil {
			b.Skip("no redis-server and no REDIS_URL")
		}
		bin = "/usr/bin/redis-server"
	}
	var last error
	for range 5 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		cmd := exec.Command(bin,
			"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no", "--daemonize", "no",
			"--dir", b.TempDir(), "--loglevel", "warning")
		cmd.SysProcAttr = redisSysProcAttr()
		if err := cmd.Start(); err != nil {
			b.Fatalf("start %s: %v", bin, err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		kill := func() { _ = cmd.Process.Kill(); <-exited }
		client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(port), ContextTimeoutEnabled: true})
		if last = waitReady(client, exited); last != nil {
			client.Close()
			kill()
			continue // most likely someone took the port first
		}
		b.Cleanup(func() { client.Close(); kill() })
		return &benchRedis{client: client, cmd: cmd}
	}
	b.Fatalf("redis-server would not start: %v", last)
	return nil
}

// waitReady pings until the server answers, it exits, or ten seconds pass.
func waitReady(c *redis.Client, exited <-chan struct{}) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return errors.New("redis-server exited: " + err.Error())
		default:
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// flush empties the database, so that a cell starts from no state.
func (r *benchRedis) flush(b *testing.B) {
	b.Helper()
	if err := r.client.FlushDB(context.Background()).Err(); err != nil {
		b.Fatalf("FLUSHDB: %v", err)
	}
}

// serverCPU is the CPU time the local redis-server has used so far, or -1
// when it is not ours or cannot be read.
func (r *benchRedis) serverCPU() time.Duration {
	if r.cmd == nil {
		return -1
	}
	return processCPU(r.cmd.Process.Pid)
}

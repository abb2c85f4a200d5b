package redisenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ory/dockertest/v3"
	dc "github.com/ory/dockertest/v3/docker"
)

// DefaultImage is the image built by scripts/build-redis-image.sh.
const DefaultImage = "limitkit-redis:local"

const (
	// labelKey marks every container and network redisenv creates, so
	// leftovers of a crashed test run can be found and removed.
	labelKey = "limitkit.integration"

	// expireSeconds bounds the life of a container whose test process died
	// before its cleanup ran.
	expireSeconds = 600

	// redisPort is the port redis listens on inside every container.
	redisPort = 6379
)

// Image returns the Redis image the harness runs: $REDIS_IMAGE, or
// DefaultImage when it is unset.
func Image() string {
	if v := os.Getenv("REDIS_IMAGE"); v != "" {
		return v
	}
	return DefaultImage
}

// Pool is a connection to the Docker engine.
type Pool struct {
	docker *dockertest.Pool
}

// NewPool connects to the Docker engine named by DOCKER_HOST (or the default
// socket). When the engine is unreachable it skips the test, or fails it when
// the environment variable CI is true.
func NewPool(t testing.TB) *Pool {
	t.Helper()
	p, err := dockertest.NewPool("")
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = p.Client.PingWithContext(ctx)
		cancel()
	}
	if err != nil {
		msg := fmt.Sprintf("redisenv: Docker engine not reachable (%v); "+
			"these tests need Docker (set DOCKER_HOST if it is not at the default socket)", err)
		if inCI() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return &Pool{docker: p}
}

// inCI reports whether the tests run in CI, where a missing Docker engine is
// a broken job rather than a developer laptop without Docker.
func inCI() bool {
	ci, _ := strconv.ParseBool(os.Getenv("CI"))
	return ci
}

// requireImage fails the test unless Image() exists locally. It must run
// before any dockertest call: dockertest pulls missing images, and a pull can
// only fail slowly here (no registry access) with a confusing error.
func (p *Pool) requireImage(t testing.TB) (repo, tag string) {
	t.Helper()
	img := Image()
	_, err := p.docker.Client.InspectImage(img)
	if errors.Is(err, dc.ErrNoSuchImage) {
		t.Fatalf("redisenv: image %q not found locally (it is never pulled); build it with\n"+
			"\tintegration/scripts/build-redis-image.sh\n"+
			"or point REDIS_IMAGE at a local Redis image", img)
	}
	if err != nil {
		t.Fatalf("redisenv: inspect image %q: %v", img, err)
	}
	return splitImage(img)
}

// splitImage splits "repo[:tag]" (repo may contain a registry host:port).
func splitImage(img string) (repo, tag string) {
	i := strings.LastIndex(img, ":")
	if i < 0 || strings.Contains(img[i:], "/") {
		return img, "latest"
	}
	return img[:i], img[i+1:]
}

// newNetwork creates a private network for one test and removes it at
// cleanup. It is internal: its containers cannot reach anything outside it,
// while the host still reaches them through the bridge.
func (p *Pool) newNetwork(t testing.TB) *dockertest.Network {
	t.Helper()
	name := "limitkit-" + sanitize(t.Name()) + "-" + randomHex(4)
	n, err := p.docker.CreateNetwork(name, func(o *dc.CreateNetworkOptions) {
		o.Driver = "bridge"
		o.Internal = true
		o.CheckDuplicate = true
		o.Labels = map[string]string{labelKey: "1"}
	})
	if err != nil {
		t.Fatalf("redisenv: create network %s: %v", name, err)
	}
	// Registered before any container: cleanups run last-in first-out, so the
	// containers are gone by the time the network is removed.
	t.Cleanup(func() {
		if err := p.docker.RemoveNetwork(n); err != nil {
			t.Errorf("redisenv: remove network %s: %v", name, err)
		}
	})
	return n
}

// server is one redis container on a private network.
type server struct {
	name string // container name
	id   string // container id
	ip   string // address on the private network
	addr string // ip:6379, reachable from the host
	res  *dockertest.Resource
}

// runRedis starts one redis container running `redis-server args...` on
// network n and arranges for it to be removed at cleanup. It returns once the
// container runs; redis may not accept connections yet (see waitPing).
// Safe to call from several goroutines.
func (p *Pool) runRedis(t testing.TB, n *dockertest.Network, repo, tag, name string, args []string) (*server, error) {
	name = n.Network.Name + "-" + name
	netName := n.Network.Name
	res, err := p.docker.RunWithOptions(&dockertest.RunOptions{
		Name:       name,
		Repository: repo,
		Tag:        tag,
		Cmd:        args,
		Labels:     map[string]string{labelKey: "1"},
	}, func(hc *dc.HostConfig) {
		// Only the private network: no default bridge, and (dockertest
		// publishes every exposed port by default) no port on the host.
		hc.NetworkMode = netName
		hc.PublishAllPorts = false
		hc.PortBindings = nil
		hc.RestartPolicy = dc.RestartPolicy{Name: "no"}
	})
	if err != nil {
		// RunWithOptions may fail after creating the container.
		_ = p.docker.RemoveContainerByName(name)
		return nil, fmt.Errorf("run container %s: %w", name, err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("redisenv: last log lines of %s:\n%s", name, p.tailLogs(res.Container.ID))
		}
		err := p.docker.Purge(res)
		var gone *dc.NoSuchContainer
		if err != nil && !errors.As(err, &gone) {
			t.Errorf("redisenv: remove container %s: %v", name, err)
		}
	})
	// Self-destruction in case the test process dies before its cleanup: the
	// engine keeps the pending stop going even without the client.
	_ = res.Expire(expireSeconds)

	ep, ok := res.Container.NetworkSettings.Networks[netName]
	if !ok || ep.IPAddress == "" {
		return nil, fmt.Errorf("container %s has no address on network %s", name, netName)
	}
	return &server{
		name: name,
		id:   res.Container.ID,
		ip:   ep.IPAddress,
		addr: fmt.Sprintf("%s:%d", ep.IPAddress, redisPort),
		res:  res,
	}, nil
}

// kill stops a container abruptly (SIGKILL, like a crash or power loss) and
// waits until the engine reports it stopped.
func (p *Pool) kill(ctx context.Context, s *server) error {
	c, err := p.docker.Client.InspectContainerWithContext(s.id, ctx)
	if err != nil {
		return err
	}
	if c.State.Paused {
		// A frozen process cannot be killed until thawed.
		if err := p.docker.Client.UnpauseContainer(s.id); err != nil {
			return err
		}
	}
	if c.State.Running {
		err := p.docker.Client.KillContainer(dc.KillContainerOptions{ID: s.id, Signal: dc.SIGKILL, Context: ctx})
		if err != nil {
			return err
		}
	}
	return waitFor(ctx, "container "+s.name+" to stop", func(ctx context.Context) error {
		c, err := p.docker.Client.InspectContainerWithContext(s.id, ctx)
		if err != nil {
			return err
		}
		if c.State.Running {
			return errors.New("still running")
		}
		return nil
	})
}

// tailLogs returns the last lines a container printed, for failure reports.
func (p *Pool) tailLogs(id string) string {
	var buf bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := p.docker.Client.Logs(dc.LogsOptions{
		Context: ctx, Container: id, OutputStream: &buf, ErrorStream: &buf,
		Stdout: true, Stderr: true, Tail: "30",
	})
	if err != nil {
		fmt.Fprintf(&buf, "(logs unavailable: %v)", err)
	}
	return buf.String()
}

var unsafeChars = regexp.MustCompile(`[^a-zA-Z0-9_.-]+`)

// sanitize makes a test name usable in Docker object names.
func sanitize(s string) string {
	s = strings.Trim(unsafeChars.ReplaceAllString(s, "-"), "-.")
	if len(s) > 30 {
		s = s[:30]
	}
	if s == "" {
		s = "test"
	}
	return strings.ToLower(s)
}

// randomHex keeps names unique across concurrent runs of the same test.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

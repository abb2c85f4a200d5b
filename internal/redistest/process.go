package redistest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// readyTimeout bounds how long a redis-server may take to accept connections.
const readyTimeout = 10 * time.Second

// process is one running redis-server.
type process struct {
	cmd  *exec.Cmd
	port int
	dir  string
	done chan struct{} // closed when the process has exited
}

// binary finds redis-server, or says why there is none.
func binary() (string, error) {
	if p, err := exec.LookPath("redis-server"); err == nil {
		return p, nil
	}
	if _, err := os.Stat("/usr/bin/redis-server"); err == nil {
		return "/usr/bin/redis-server", nil
	}
	return "", errors.New("redis-server is not installed (apt-get install -y redis-server) and REDIS_URL is not set")
}

// unavailable ends a test that cannot get a Redis: a failure on CI, where
// the server is expected, and a skip on a developer's machine.
func unavailable(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("redistest: no Redis for this test on CI: %s", why)
	}
	t.Skipf("redistest: skipping: %s", why)
}

// freePort returns a port on 127.0.0.1 that is free now, and whose cluster
// bus port (port+10000) is free too when bus is set. Another process may
// take it before redis-server binds it; start retries on that.
func freePort(bus bool) (int, error) {
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		if !bus {
			l.Close()
			return port, nil
		}
		if port+10000 > 65535 {
			l.Close()
			continue
		}
		b, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port+10000))
		l.Close()
		if err != nil {
			continue
		}
		b.Close()
		return port, nil
	}
	return 0, errors.New("no free port pair for a cluster node")
}

// startProcess runs redis-server on port with extra arguments in dir and
// waits until it logs that it accepts connections.
func startProcess(bin, dir string, port int, extra ...string) (*process, error) {
	args := append([]string{
		"--port", strconv.Itoa(port),
		"--bind", "127.0.0.1",
		"--protected-mode", "no",
		"--save", "",
		"--appendonly", "no",
		"--daemonize", "no",
		"--dir", dir,
	}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.SysProcAttr = sysProcAttr()
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("redistest: start %s: %w", bin, err)
	}
	p := &process{cmd: cmd, port: port, dir: dir, done: make(chan struct{})}

	ready := make(chan struct{})
	var logTail strings.Builder
	go func() {
		sc := bufio.NewScanner(out)
		signalled := false
		for sc.Scan() {
			line := sc.Text()
			if !signalled {
				if logTail.Len() < 8<<10 {
					logTail.WriteString(line + "\n")
				}
				if strings.Contains(line, "Ready to accept connections") {
					signalled = true
					close(ready)
				}
			}
		}
		_, _ = io.Copy(io.Discard, out)
		_ = cmd.Wait()
		close(p.done)
	}()

	select {
	case <-ready:
		return p, nil
	case <-p.done:
		return nil, fmt.Errorf("redistest: redis-server on port %d exited before it was ready:\n%s", port, logTail.String())
	case <-time.After(readyTimeout):
		p.kill()
		return nil, fmt.Errorf("redistest: redis-server on port %d not ready after %v", port, readyTimeout)
	}
}

func (p *process) addr() string { return "127.0.0.1:" + strconv.Itoa(p.port) }

// kill stops the process at once (no shutdown save: nothing is persisted
// anyway) and waits until it has exited and released its port.
func (p *process) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// start runs a server on a fresh port, retrying if another process took the
// port between freePort and bind.
func start(bin, dir string, bus bool, extra ...string) (*process, error) {
	var last error
	for range 5 {
		port, err := freePort(bus)
		if err != nil {
			return nil, err
		}
		p, err := startProcess(bin, dir, port, extra...)
		if err == nil {
			return p, nil
		}
		last = err
	}
	return nil, last
}

package readme

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// A session is a ```console block: commands after "$ ", each followed by
// the output the README promises. An expected line ending in "…" matches
// any line that starts with what comes before it; the others match exactly.
//
// A session runs against the Gin, Echo and Chi examples unless a
// <!-- readme: example NAME --> comment before it names the one example it
// is about.
type session struct {
	line     int
	examples []string
	steps    []step
}

type step struct {
	line int
	cmd  string
	want []string
}

func sessions(t *testing.T) []session {
	t.Helper()
	var out []session
	for _, b := range blocks(t) {
		if b.lang != "console" {
			continue
		}
		s := session{line: b.line, examples: []string{"gin", "echo", "chi"}}
		if name, ok := strings.CutPrefix(b.mode, "example-"); ok {
			s.examples = []string{name}
		}
		for i, l := range strings.Split(strings.TrimRight(b.code, "\n"), "\n") {
			if cmd, ok := strings.CutPrefix(l, "$ "); ok {
				s.steps = append(s.steps, step{line: b.line + i, cmd: cmd})
				continue
			}
			if len(s.steps) == 0 {
				t.Fatalf("README.md:%d: a console block must start with a command", b.line+i)
			}
			last := &s.steps[len(s.steps)-1]
			last.want = append(last.want, l)
		}
		out = append(out, s)
	}
	return out
}

var listening = regexp.MustCompile(`listens on http://([0-9.:\[\]a-f]+)`)

// startExample builds and starts one example on a port of its own choosing
// and returns its address; the example stops with the test.
func startExample(t *testing.T, root, name string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), name)
	build := exec.Command("go", "build", "-o", bin, "./examples/"+name)
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./examples/%s: %v\n%s", name, err, out)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin)
	cmd.Dir = root // as `go run ./examples/...` from the repository's root
	cmd.Env = append(os.Environ(), "ADDR=127.0.0.1:0", "REDIS_URL=")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		found := false
		for sc.Scan() {
			if m := listening.FindStringSubmatch(sc.Text()); m != nil && !found {
				found = true
				addr <- m[1]
			}
		}
		if !found {
			close(addr)
		}
	}()
	select {
	case a, ok := <-addr:
		if !ok {
			t.Fatalf("examples/%s exited without saying where it listens", name)
		}
		return a
	case <-time.After(time.Minute):
		t.Fatalf("examples/%s did not say where it listens within a minute", name)
	}
	return ""
}

// TestCurlSessionsWorkOnEveryExample runs every console session of the
// README, as written but for the example's address, against the Gin, Echo
// and Chi examples, each started afresh, and compares the output with what
// the README shows.
func TestCurlSessionsWorkOnEveryExample(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the examples")
	}
	for _, tool := range []string{"bash", "curl", "jq"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("the README's sessions need %s on the PATH (CI installs it in .ci/run)", tool)
			}
			t.Skipf("the README's sessions need %s on the PATH", tool)
		}
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	all := sessions(t)
	if len(all) == 0 {
		t.Fatal("the README has no console sessions")
	}
	for _, name := range []string{"gin", "echo", "chi", "config"} {
		var mine []session
		for _, s := range all {
			if slices.Contains(s.examples, name) {
				mine = append(mine, s)
			}
		}
		if len(mine) == 0 {
			continue
		}
		t.Run(name, func(t *testing.T) {
			addr := startExample(t, root, name)
			for _, s := range mine {
				runSession(t, s, addr)
			}
		})
	}
}

// runSession runs a session's commands in one shell, so that a variable set
// by one is seen by the next.
func runSession(t *testing.T, s session, addr string) {
	t.Helper()
	var script strings.Builder
	var run []step
	for _, st := range s.steps {
		if strings.HasPrefix(st.cmd, "go run ") {
			continue // the test started the example itself
		}
		run = append(run, st)
		cmd := strings.ReplaceAll(st.cmd, "localhost:8080", addr)
		fmt.Fprintf(&script, "echo '@@step'\n%s\necho \"@@status $?\"\n", cmd)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sh := exec.CommandContext(ctx, "bash", "-o", "pipefail", "-c", script.String())
	var out bytes.Buffer
	sh.Stdout, sh.Stderr = &out, &out
	if err := sh.Run(); err != nil {
		t.Fatalf("README.md:%d: the session failed: %v\n%s", s.line, err, out.String())
	}
	parts := strings.Split(out.String(), "@@step\n")[1:]
	if len(parts) != len(run) {
		t.Fatalf("README.md:%d: ran %d commands, got %d outputs:\n%s", s.line, len(run), len(parts), out.String())
	}
	for i, st := range run {
		body, status, _ := strings.Cut(parts[i], "@@status ")
		if strings.TrimSpace(status) != "0" {
			t.Errorf("README.md:%d: `%s` exited with status %s:\n%s", st.line, st.cmd, strings.TrimSpace(status), body)
			continue
		}
		got := lines(body)
		if !matches(got, st.want) {
			t.Errorf("README.md:%d: `%s` printed\n\t%s\nwhere the README shows\n\t%s", st.line, st.cmd,
				strings.Join(got, "\n\t"), strings.Join(st.want, "\n\t"))
		}
	}
}

func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		l = strings.TrimRight(l, " \r")
		if l != "" || len(out) > 0 {
			out = append(out, l)
		}
	}
	if len(out) == 1 && out[0] == "" {
		return nil
	}
	return out
}

func matches(got, want []string) bool {
	if len(got) != len(want) {
		return false
	}
	for i, w := range want {
		if p, ok := strings.CutSuffix(w, "…"); ok {
			if !strings.HasPrefix(got[i], p) {
				return false
			}
		} else if got[i] != w {
			return false
		}
	}
	return true
}

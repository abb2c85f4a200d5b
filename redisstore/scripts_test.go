package redisstore

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/limitkit/limitkit/core"
)

var update = flag.Bool("update", false, "rewrite testdata/*.lua, the composed scripts, from lua/")

// TestScripts keeps testdata/ equal to the composed scripts, so that every
// script can be read whole and run with redis-cli --eval: after changing
// lua/, go test ./redisstore -run TestScripts -update rewrites them.
func TestScripts(t *testing.T) {
	for alg := core.FixedWindow; alg <= core.LeakyBucket; alg++ {
		s := scripts[alg]
		for name, src := range map[string]any{alg.String() + ".lua": s.one, alg.String() + ".batch.lua": s.many, alg.String() + ".refund.lua": s.refund} {
			path := filepath.Join("testdata", name)
			if *update {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(src.(string)), 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			golden, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (go test ./redisstore -run TestScripts -update writes it)", err)
			}
			if string(golden) != src.(string) {
				t.Errorf("%s differs from the script composed from lua/: go test ./redisstore -run TestScripts -update rewrites it", path)
			}
		}
	}
}

// TestScripts_shaMatchesSource holds each script's SHA-1, which EVALSHA
// sends, to its source, which EVAL sends.
func TestScripts_shaMatchesSource(t *testing.T) {
	for alg := core.FixedWindow; alg <= core.LeakyBucket; alg++ {
		s := scripts[alg]
		if s.oneSHA != sha1hex(s.one.(string)) || s.manySHA != sha1hex(s.many.(string)) || s.refundSHA != sha1hex(s.refund.(string)) {
			t.Errorf("%v: SHA-1 does not match the source", alg)
		}
	}
}

func TestCompose_fillsNestedSlots(t *testing.T) {
	got, used := compose("a\n  --{{x}}\nb\n", map[string]string{"x": "x1\n--{{y}}\n", "y": "y1\n"})
	if want := "a\nx1\ny1\nb\n"; got != want {
		t.Errorf("compose = %q, want %q", got, want)
	}
	if !used["x"] || !used["y"] {
		t.Errorf("used = %v, want x and y", used)
	}
}

func TestCompose_panicsOnSlotWithoutPart(t *testing.T) {
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), "--{{check}}") {
			t.Errorf("recover() = %v, want a panic naming the slot", r)
		}
	}()
	compose("--{{check}}\n", map[string]string{})
}

func TestCompose_panicsOnMarkerLeftInLine(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("a marker that is not alone on its line was left in silently")
		}
	}()
	compose("x = 1 --{{check}}\n", map[string]string{"check": ""})
}

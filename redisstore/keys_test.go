package redisstore

import (
	"fmt"
	"strings"
	"testing"

	"github.com/limitkit/limitkit/core"
)

func TestTag(t *testing.T) {
	long := strings.Repeat("x", maxTagLen+1)
	tests := []struct {
		name   string
		key    string
		hashed bool
	}{
		{"plain key is used verbatim", "203.0.113.7", false},
		{"key of the longest verbatim length", strings.Repeat("x", maxTagLen), false},
		{"longer key is hashed", long, true},
		{"empty key is hashed, since {} would not be a hash tag", "", true},
		{"opening brace is hashed", "a{b", true},
		{"closing brace is hashed", "a}b", true},
		{"key that looks hashed is hashed again", "#abc", true},
		{"colons and spaces are fine", "user:42 plan:pro", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tag(tt.key)
			if tt.hashed {
				if !strings.HasPrefix(got, hashed) || len(got) != 1+64 {
					t.Fatalf("tag(%q) = %q, want # and 64 hex digits", tt.key, got)
				}
			} else if got != tt.key {
				t.Fatalf("tag(%q) = %q, want the key itself", tt.key, got)
			}
			if strings.ContainsAny(got, "{}") {
				t.Fatalf("tag(%q) = %q holds a brace", tt.key, got)
			}
		})
	}
}

func TestTag_distinctKeysGetDistinctTags(t *testing.T) {
	keys := []string{"", "#", "a", "#a", "a{", "a}", "{a}", strings.Repeat("y", 300), strings.Repeat("y", 301)}
	seen := map[string]string{}
	for _, k := range keys {
		g := tag(k)
		if prev, dup := seen[g]; dup {
			t.Fatalf("keys %q and %q share tag %q", prev, k, g)
		}
		seen[g] = k
	}
}

func TestKeys_shareOneHashTag(t *testing.T) {
	s := &Store{prefix: DefaultPrefix}
	rule := core.MustRule("1/second;2/minute", core.SlidingWindowLog)
	got := s.keys(nil, "user42", rule.Shape(), 2)
	sh := fmt.Sprintf("%016x", rule.Shape())
	want := []string{"limitkit:{user42}:" + sh + ":0", "limitkit:{user42}:" + sh + ":1"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("keys = %q\nwant %q", got, want)
	}
}

// Each rule shape has keys of its own: the state of one never meets another's.
func TestKeys_differByRuleShape(t *testing.T) {
	s := &Store{prefix: DefaultPrefix}
	seen := map[string]string{}
	for _, alg := range []core.Algorithm{core.FixedWindow, core.SlidingWindowLog, core.SlidingWindowCounter, core.TokenBucket, core.LeakyBucket} {
		for _, expr := range []string{"10/minute", "10/hour", "11/minute", "10/minute;50/hour"} {
			r := core.MustRule(expr, alg)
			k := s.keys(nil, "k", r.Shape(), len(r.Limits))[0]
			if prev, dup := seen[k]; dup {
				t.Fatalf("%v %s and %s share the key %q", alg, expr, prev, k)
			}
			seen[k] = alg.String() + " " + expr
		}
	}
}

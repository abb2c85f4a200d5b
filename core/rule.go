package core

import (
	"fmt"
	"math/bits"
	"time"
)

// Rule is what one check enforces: one or more limits, checked together with
// one algorithm. A request is admitted only if every limit admits it, and it
// is then charged to all of them; a denied request is charged to none.
//
// A Rule is a small value: build it once (NewRule, MustRule) and pass it to
// every check. Stores only read it.
type Rule struct {
	Limits    []Limit
	Algorithm Algorithm // zero: the limiter's default
	// Burst is the capacity of TokenBucket and LeakyBucket for every limit of
	// the rule; zero means each limit's own Count. Other algorithms ignore it.
	Burst int64
}

// NewRule parses expr (see ParseLimits) into a rule using algorithm alg (zero
// for the limiter's default) and checks that it can be enforced.
func NewRule(expr string, alg Algorithm) (Rule, error) {
	limits, err := ParseLimits(expr)
	if err != nil {
		return Rule{}, err
	}
	r := Rule{Limits: limits, Algorithm: alg}
	if err := r.Validate(); err != nil {
		return Rule{}, err
	}
	return r, nil
}

// MustRule is NewRule for package-level set-up: it panics on error.
func MustRule(expr string, alg Algorithm) Rule {
	r, err := NewRule(expr, alg)
	if err != nil {
		panic(err)
	}
	return r
}

// String renders the rule's limits joined by ";", such as "10/second;1000/hour".
func (r Rule) String() string {
	s := ""
	for i, l := range r.Limits {
		if i > 0 {
			s += ";"
		}
		s += l.String()
	}
	return s
}

// Validate reports why the rule cannot be enforced, or nil.
func (r Rule) Validate() error {
	var buf [maxInlineLimits]shape
	_, err := r.shapes(r.Algorithm.orDefault(), &buf)
	return err
}

// maxExact bounds counts and times so that every store, including Lua's
// doubles in Redis, computes them exactly.
const maxExact = 1 << 52

// maxInlineLimits is how many limits a rule may have before checking it
// allocates.
const maxInlineLimits = 4

// shapes validates the rule for algorithm alg and prepares its limits for
// arithmetic in one pass, in buf when they fit: this runs on every check.
func (r *Rule) shapes(alg Algorithm, buf *[maxInlineLimits]shape) ([]shape, error) {
	if len(r.Limits) == 0 {
		return nil, fmt.Errorf("limitkit: rule has no limits")
	}
	if !alg.valid() {
		return nil, fmt.Errorf("limitkit: rule %q: unknown algorithm %v", r.String(), r.Algorithm)
	}
	if r.Burst < 0 || r.Burst > maxExact {
		return nil, fmt.Errorf("limitkit: rule %q: burst %d must be between 0 and 2^52", r.String(), r.Burst)
	}
	out := buf[:0]
	for _, l := range r.Limits {
		if l.Count <= 0 || l.Count > maxExact {
			return nil, fmt.Errorf("limitkit: limit %q: count must be between 1 and 2^52", l.String())
		}
		if l.Period < time.Microsecond || l.Period/time.Microsecond > maxExact/4 {
			return nil, fmt.Errorf("limitkit: limit %q: period must be between 1µs and 2^50µs", l.String())
		}
		s := shapeOf(l, r.burst(l))
		switch alg {
		case SlidingWindowLog:
			if l.Count > MaxLogCount {
				return nil, fmt.Errorf("limitkit: limit %q: the sliding window log keeps one entry per request and allows at most %d; use SlidingWindowCounter", l.String(), MaxLogCount)
			}
		case TokenBucket, LeakyBucket:
			if s.step == 0 {
				return nil, fmt.Errorf("limitkit: limit %q: buckets refill at most one token per microsecond", l.String())
			}
			// Redis computes in doubles: keep the bucket's depth in µs exact.
			if hi, lo := bits.Mul64(uint64(s.burst), uint64(s.step)); hi != 0 || lo > maxExact {
				return nil, fmt.Errorf("limitkit: rule %q: burst %d is too large for this rate", r.String(), s.burst)
			}
		}
		out = append(out, s)
	}
	return out, nil
}

func (r *Rule) burst(l Limit) int64 {
	if r.Burst > 0 {
		return r.Burst
	}
	return l.Count
}

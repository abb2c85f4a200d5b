package core

import (
	"crypto/sha256"
	"encoding/binary"
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
// for the limiter's default) and checks that it can be enforced. A rule with
// a calendar limit is counted with FixedWindow: given no algorithm, NewRule
// chooses it.
func NewRule(expr string, alg Algorithm) (Rule, error) {
	limits, err := ParseLimits(expr)
	if err != nil {
		return Rule{}, err
	}
	if alg == 0 && hasCalendar(limits) {
		alg = FixedWindow
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
		if err := l.checkCalendar(r, alg); err != nil {
			return nil, err
		}
		s := shapeOf(l, r.burst(l))
		switch alg {
		case SlidingWindowLog:
			if l.Count > MaxLogCount {
				return nil, fmt.Errorf("limitkit: limit %q: the sliding window log keeps one entry per request and allows at most %d; use SlidingWindowCounter", l.String(), MaxLogCount)
			}
		case TokenBucket, LeakyBucket:
			// The step is W/L rounded up to a microsecond (see shapeOf), so a
			// bucket sustains W/step per window: refuse a rate for which that
			// falls a whole request or more short of L, such as 700000/second
			// (a step of 2µs sustains 500000).
			if (l.Count-1)*s.step >= s.window && l.Count > 1 {
				return nil, fmt.Errorf("limitkit: limit %q: buckets keep time in whole microseconds and would sustain only %d per %v; use a rate whose interval is a whole number of microseconds, or another algorithm", l.String(), s.window/s.step, l.Period)
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

// Capacity is the most one request may cost and still be admitted under
// limit i of the rule: the burst for TokenBucket and LeakyBucket (Burst, or
// the limit's Count when Burst is zero), the count for the other algorithms.
// Stores refuse a larger cost with Decision.Never.
func (r Rule) Capacity(i int) int64 {
	if isBucket(r.Algorithm.orDefault()) {
		return r.burst(r.Limits[i])
	}
	return r.Limits[i].Count
}

func (r *Rule) burst(l Limit) int64 {
	if r.Burst > 0 {
		return r.Burst
	}
	return l.Count
}

// Shape is a digest of everything a key's state under the rule depends on:
// the algorithm (zero read as DefaultAlgorithm), each limit's count and
// period in microseconds, in order, and for the buckets each limit's burst.
// Stores keep a key's state per shape, so that two rules checked on one key
// never reset, disable or misread each other; rules of one shape share it.
// It is the first 64 bits of a SHA-256, the same in every process and
// build: no two rules of an app's configuration share one but by a chance
// of about 2^-64 a pair (the Redis store names keys by it; the memory store
// compares shapes in full). A rule with a calendar limit digests, besides,
// each limit's calendar unit and zone name, under a first byte no other
// rule's digest has, so that the shapes of other rules are what they were
// before calendar limits existed.
func (r Rule) Shape() uint64 {
	alg := r.Algorithm.orDefault()
	calendar := hasCalendar(r.Limits)
	var buf [1 + 64*maxInlineLimits]byte
	first := byte(alg)
	if calendar {
		first |= 0x80
	}
	b := append(buf[:0], first)
	for _, l := range r.Limits {
		b = binary.BigEndian.AppendUint64(b, uint64(l.Count))
		b = binary.BigEndian.AppendUint64(b, uint64(l.Period/time.Microsecond))
		if isBucket(alg) {
			b = binary.BigEndian.AppendUint64(b, uint64(r.burst(l)))
		}
		if calendar {
			b = append(b, byte(l.Calendar))
			if l.Calendar != 0 {
				name := l.zone().String()
				b = binary.BigEndian.AppendUint16(b, uint16(len(name)))
				b = append(b, name...)
			}
		}
	}
	sum := sha256.Sum256(b)
	return binary.BigEndian.Uint64(sum[:8])
}

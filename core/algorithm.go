package core

import (
	"fmt"
	"strings"
)

// Algorithm selects how a limit counts requests. The zero value means "the
// limiter's default", which is SlidingWindowCounter unless WithAlgorithm says
// otherwise.
//
// Every store implements each algorithm with the same exact semantics, so the
// memory store and the Redis store give the same decision for the same
// sequence of (time, key, cost). With L the count, W the period and c the cost
// of a request:
//
//   - FixedWindow admits while the count in the current window plus c is at
//     most L. Windows are aligned to the Unix epoch, or, for a calendar
//     limit (PerCalendar), are its days, weeks, months or years in its zone.
//     One counter per key; a client may spend L at the end of one window and
//     L at the start of the next. It is the one algorithm of calendar limits.
//   - SlidingWindowLog admits while the costs admitted in (now−W, now] plus c
//     are at most L. Exact, but it keeps one timestamp per admitted request, so
//     its count is capped at MaxLogCount.
//   - SlidingWindowCounter admits while prev·(W−elapsed)/W + curr + c ≤ L,
//     where curr counts the current fixed window and prev the one before
//     (Cloudflare's estimate). Two counters per key and no boundary burst.
//   - TokenBucket admits while the bucket holds c tokens; it refills L tokens
//     per W continuously, up to the burst (default L). One timestamp per key
//     (it is run as GCRA, which is the same bucket seen as a schedule).
//   - LeakyBucket is the bucket as a queue: a request is scheduled at the
//     bucket's next free slot and admitted if the queue, counting the
//     request, holds at most burst requests; the decision's Delay says how
//     long to hold it so that requests leave at L per W.
//
// SlidingWindowCounter is the default: a limit of "100/minute" then means
// about 100 in any minute, as users read it, with two counters of fixed size
// per key. FixedWindow lets a client spend twice the limit across a window
// boundary; TokenBucket, with its default burst, lets a client send 2L in the
// first period; SlidingWindowLog is exact but its memory grows with L.
type Algorithm uint8

// The algorithms. See Algorithm for their exact semantics.
const (
	FixedWindow Algorithm = iota + 1
	SlidingWindowLog
	SlidingWindowCounter
	TokenBucket
	LeakyBucket
)

// DefaultAlgorithm is used where neither the rule nor the limiter names one.
const DefaultAlgorithm = SlidingWindowCounter

// MaxLogCount bounds the count of a SlidingWindowLog limit: the log keeps up to
// Count timestamps per key, so a larger count would let one key hold megabytes.
// Use SlidingWindowCounter for large counts.
const MaxLogCount = 100_000

var algorithmNames = [...]string{
	FixedWindow:          "fixed-window",
	SlidingWindowLog:     "sliding-window-log",
	SlidingWindowCounter: "sliding-window-counter",
	TokenBucket:          "token-bucket",
	LeakyBucket:          "leaky-bucket",
}

// String returns the algorithm's name, such as "token-bucket".
func (a Algorithm) String() string {
	if a == 0 {
		return "default"
	}
	if int(a) < len(algorithmNames) {
		return algorithmNames[a]
	}
	return fmt.Sprintf("Algorithm(%d)", uint8(a))
}

// ParseAlgorithm reads an algorithm name as String writes it; underscores
// and case are ignored, so "TOKEN_BUCKET" works from configuration files.
// It also reads the strategy names of Python's limits package (slowapi,
// Flask-Limiter): "fixed-window", "sliding-window-counter", and
// "moving-window", which is the SlidingWindowLog.
func ParseAlgorithm(name string) (Algorithm, error) {
	n := strings.ReplaceAll(strings.ToLower(strings.TrimSpace(name)), "_", "-")
	for a, s := range algorithmNames {
		if s != "" && s == n {
			return Algorithm(a), nil
		}
	}
	if n == "moving-window" {
		return SlidingWindowLog, nil
	}
	return 0, fmt.Errorf("limitkit: unknown algorithm %q; expected fixed-window, sliding-window-log (limits' moving-window), sliding-window-counter, token-bucket or leaky-bucket", name)
}

func (a Algorithm) valid() bool { return a >= FixedWindow && a <= LeakyBucket }

func (a Algorithm) orDefault() Algorithm {
	if a == 0 {
		return DefaultAlgorithm
	}
	return a
}

package core

import "testing"

// Capacity is the one definition of the most a request may cost, which
// both stores refuse beyond with Never.
func TestRule_capacityIsTheBurstForBucketsAndTheCountOtherwise(t *testing.T) {
	tests := []struct {
		alg   Algorithm
		burst int64
		want  [2]int64
	}{
		{FixedWindow, 50, [2]int64{10, 100}},
		{SlidingWindowLog, 0, [2]int64{10, 100}},
		{0, 50, [2]int64{10, 100}}, // the default, the sliding window counter
		{TokenBucket, 0, [2]int64{10, 100}},
		{TokenBucket, 50, [2]int64{50, 50}},
		{LeakyBucket, 3, [2]int64{3, 3}},
	}
	for _, tt := range tests {
		r := MustRule("10/second;100/minute", tt.alg)
		r.Burst = tt.burst
		if got := [2]int64{r.Capacity(0), r.Capacity(1)}; got != tt.want {
			t.Errorf("%v burst %d: capacities %v; want %v", tt.alg, tt.burst, got, tt.want)
		}
	}
}

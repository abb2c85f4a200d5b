package core

import (
	"testing"
	"time"
)

// X-RateLimit-Reset as the Unix time of full replenishment, rounded up so
// that it is never early; the IETF field's t stays relative.
func TestWithResetEpoch_sendsTheTimeOfFullReplenishment(t *testing.T) {
	lim, clk := clockedLimiter(t)
	clk.mu.Lock()
	clk.now = time.Unix(1_700_000_000, 300_000_000) // 20.3s into a minute window
	clk.mu.Unlock()
	epoch := MustNewMiddleware("5/minute", WithLimiter(lim), WithAlgorithm(FixedWindow), WithResetEpoch(), WithIETFHeaders(), WithName("e"))
	plain := MustNewMiddleware("5/minute", WithLimiter(lim), WithAlgorithm(FixedWindow), WithName("p"))
	w := get(epoch.Handler(okHandler), "/", client)
	if got := w.Header().Get(HeaderReset); got != "1700000040" {
		t.Errorf("X-RateLimit-Reset = %q; want 1700000040, the window's end", got)
	}
	if got := w.Header().Get(HeaderRateLimit); got != `"e";r=4;t=40` {
		t.Errorf("RateLimit = %q; want t relative, 40", got)
	}
	if got := get(plain.Handler(okHandler), "/", client).Header().Get(HeaderReset); got != "40" {
		t.Errorf("without the option X-RateLimit-Reset = %q; want 40 seconds from now", got)
	}
}

package core_test

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/limitkit/limitkit/core"
	"github.com/limitkit/limitkit/core/storetest"
)

// The five algorithms on one limit, 4/minute, for a client that sends a
// request every five seconds from 0:40 to 1:35: x admitted, . refused. The
// README's picture is this output.
func ExampleAlgorithm() {
	for _, alg := range []core.Algorithm{core.FixedWindow, core.SlidingWindowCounter, core.SlidingWindowLog, core.TokenBucket, core.LeakyBucket} {
		clock := storetest.NewClock()
		store := core.NewMemoryStore(core.MemoryClock(clock.Now))
		rule := core.MustRule("4/minute", alg)
		var row, held []string
		for t := 40 * time.Second; t <= 95*time.Second; t += 5 * time.Second {
			if t == time.Minute {
				row = append(row, "|")
			}
			clock.Set(t)
			d, _ := store.Take(context.Background(), "client", rule, 1)
			if d.Allowed {
				row = append(row, "x")
				if d.Delay > 0 {
					held = append(held, fmt.Sprintf("%v", (t+d.Delay).Seconds()))
				}
			} else {
				row = append(row, ".")
			}
		}
		fmt.Printf("%-23s %s", alg, strings.Join(row, " "))
		if len(held) > 0 {
			fmt.Printf("  (held until %s s)", strings.Join(held, ", "))
		}
		fmt.Println()
		store.Close()
	}
	// Output:
	// fixed-window            x x x x | x x x x . . . .
	// sliding-window-counter  x x x x | . . . x . . x .
	// sliding-window-log      x x x x | . . . . . . . .
	// token-bucket            x x x x | x . x . . x . .
	// leaky-bucket            x x x x | x . x . . x . .  (held until 55, 70, 85, 100, 115, 130 s)
}

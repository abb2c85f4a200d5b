package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/limitkit/limitkit/core"
)

// runQuota runs the tests of core.QuotaStore's operations, for stores that
// implement it.
func runQuota(t *testing.T, f Factory) {
	t.Run("PeekIsTakeWithoutTheCharge", func(t *testing.T) { runPeek(t, f) })
	t.Run("PeekAddsNothing", func(t *testing.T) { runPeekAddsNothing(t, f) })
	t.Run("RefundsGiveBackWhatTheChargeStillCounts", func(t *testing.T) { runRefunds(t, f) })
	t.Run("ReservationsSettleOnce", func(t *testing.T) { runReservationRules(t, f) })
	t.Run("RefundOfMoreThanTheChargeIsAnError", func(t *testing.T) { runRefundInvalid(t, f) })
}

func quotaStore(t *testing.T, st core.Store) core.QuotaStore {
	t.Helper()
	q, ok := st.(core.QuotaStore)
	if !ok {
		t.Skipf("%T does not implement core.QuotaStore", st)
	}
	return q
}

// sameDecision fails unless got and want are the same decision.
func sameDecision(t *testing.T, where string, got, want core.Decision) {
	t.Helper()
	if got != want {
		t.Fatalf("%s:\n got %+v\nwant %+v", where, got, want)
	}
}

// runPeek keeps two keys in step and checks, after every charge, that a
// peek at one is exactly the decision a take gets at the other, at every
// cost (one that fits, one that may not, one that never can), and that
// the peek charged nothing: the take at the peeked key then gets the same.
func runPeek(t *testing.T, f Factory) {
	forEachAlgorithm(t, f, func(t *testing.T, alg core.Algorithm, st core.Store, clock *ManualClock, key string) {
		q := quotaStore(t, st)
		ctx := context.Background()
		for _, expr := range []string{"5/second", "3/second;5/minute"} {
			r := rule(expr, alg, 0)
			a, b := key+expr+":a", key+expr+":b"
			for i := range 8 {
				clock.Set(time.Duration(i) * 37 * ms)
				for _, cost := range []int64{1, 3, 6, 0} {
					where := fmt.Sprintf("%s step %d cost %d", expr, i, cost)
					peeked, err := q.Peek(ctx, a, r, cost)
					if err != nil {
						t.Fatalf("%s: Peek: %v", where, err)
					}
					again, _ := q.Peek(ctx, a, r, cost)
					sameDecision(t, where+": a second peek", again, peeked)
					sameDecision(t, where+": peek against take", peeked, take(t, st, b, r, cost))
					sameDecision(t, where+": take after peek", take(t, st, a, r, cost), peeked)
				}
			}
		}
	})
}

// runPeekAddsNothing checks that peeking at a key the store has never seen
// leaves it unseen: a Reset-free later take is as on a fresh key, and the
// store holds nothing that never expires (see Expirer).
func runPeekAddsNothing(t *testing.T, f Factory) {
	forEachAlgorithm(t, f, func(t *testing.T, alg core.Algorithm, st core.Store, _ *ManualClock, key string) {
		q := quotaStore(t, st)
		r := rule("2/minute", alg, 0)
		for range 3 {
			if d, err := q.Peek(context.Background(), key, r, 1); err != nil || !d.Allowed || d.Remaining != 1 {
				t.Fatalf("Peek of a fresh key: %+v, %v; want allowed with 1 remaining", d, err)
			}
		}
		if d, err := q.Peek(context.Background(), key, r, 3); err != nil || d.Allowed || !d.Never {
			t.Fatalf("Peek of a cost that can never fit: %+v, %v; want Never", d, err)
		}
		if m, ok := st.(interface{ Len() int }); ok && m.Len() != 0 {
			t.Fatalf("the store holds %d keys after peeks alone; want 0", m.Len())
		}
		if x, ok := st.(Expirer); ok {
			names, err := x.Unexpiring(context.Background())
			if err != nil || len(names) > 0 {
				t.Fatalf("after peeks: unexpiring %v, %v", names, err)
			}
		}
		if d, c, err := q.Reserve(context.Background(), key, r, 3); err != nil || d.Allowed || !d.Never || c != (core.Charge{}) {
			t.Fatalf("Reserve of a cost that can never fit: %+v, %+v, %v; want Never and no charge", d, c, err)
		}
	})
}

// quotaStep is one operation of a refund scenario: a take, a peek or a
// reservation, whose decision must be want, or a refund of amount of the
// res-th reservation.
type quotaStep struct {
	at     time.Duration
	op     string // "take", "peek", "reserve", "refund"
	cost   int64  // the cost, or the amount a refund gives back
	res    int    // the reservation a refund gives back from
	want   step   // for take, peek and reserve (its at and cost are ignored)
	reason string // what the step shows
}

type quotaScenario struct {
	name  string
	rule  core.Rule
	steps []quotaStep
}

// quotaScenarios prove what a refund means for each algorithm, as
// core.Reservation documents it; the comments show the arithmetic.
var quotaScenarios = []quotaScenario{
	{
		name: "FixedWindow/givesBackOnlyWhileTheChargesWindowIsCurrent",
		rule: rule("5/second", core.FixedWindow, 0),
		steps: []quotaStep{
			{at: 0, op: "reserve", cost: 3, want: step{allowed: true, remaining: 2}},
			{at: 100 * ms, op: "refund", cost: 2, res: 0, reason: "settle 3 to 1"},
			{at: 100 * ms, op: "peek", cost: 1, want: step{allowed: true, remaining: 3, reset: 900 * ms}},
			{at: 900 * ms, op: "reserve", cost: 2, want: step{allowed: true, remaining: 2}},
			{at: 1100 * ms, op: "take", cost: 1, want: step{allowed: true, remaining: 4}},
			{at: 1100 * ms, op: "refund", cost: 2, res: 1, reason: "its window is over: nothing"},
			{at: 1100 * ms, op: "peek", cost: 1, want: step{allowed: true, remaining: 3}},
		},
	},
	{
		name: "FixedWindow/twoLimitsGiveBackBoth",
		rule: rule("3/second;5/minute", core.FixedWindow, 0),
		steps: []quotaStep{
			{at: 0, op: "reserve", cost: 3, want: step{allowed: true, remaining: 0, limit: "3/second"}},
			{at: 100 * ms, op: "refund", cost: 3, res: 0, reason: "cancel: both counts back to 0"},
			{at: 200 * ms, op: "take", cost: 3, want: step{allowed: true, remaining: 0, limit: "3/second"}},
			// The minute holds 3: without the refund it would hold 6.
			{at: 1100 * ms, op: "take", cost: 2, want: step{allowed: true, remaining: 0, limit: "5/minute"}},
		},
	},
	{
		name: "SlidingWindowCounter/givesBackFromTheChargesWindowCurrentOrPrevious",
		rule: rule("10/second", core.SlidingWindowCounter, 0),
		steps: []quotaStep{
			{at: 0, op: "reserve", cost: 4, want: step{allowed: true, remaining: 6}},
			{at: 500 * ms, op: "refund", cost: 3, res: 0, reason: "current window: 4 → 1"},
			{at: 500 * ms, op: "peek", cost: 1, want: step{allowed: true, remaining: 8}},          // 10-1-1
			{at: 900 * ms, op: "reserve", cost: 5, want: step{allowed: true, remaining: 4}},       // 10-1-5; window 0 holds 6
			{at: 1500 * ms, op: "peek", cost: 1, want: step{allowed: true, remaining: 6}},         // 6·½ = 3: 10-3-1
			{at: 1500 * ms, op: "refund", cost: 5, res: 1, reason: "previous window: 6 → 1"},      //
			{at: 1500 * ms, op: "peek", cost: 1, want: step{allowed: true, remaining: 8}},         // 1·½: ⌊10-0.5-1⌋
			{at: 1500 * ms, op: "take", cost: 2, want: step{allowed: true, remaining: 7}},         // ⌊10-0.5-2⌋; window 1 holds 2
			{at: 1500 * ms, op: "refund", cost: 1, res: 0, reason: "the previous window's 1 → 0"}, //
			{at: 1500 * ms, op: "peek", cost: 1, want: step{allowed: true, remaining: 7}},         // 0·½ + 2: 10-2-1
			{at: 3100 * ms, op: "reserve", cost: 3, want: step{allowed: true, remaining: 7}},      // windows 1 and 2 are gone
			{at: 5200 * ms, op: "take", cost: 1, want: step{allowed: true, remaining: 9}},         // window 5
			{at: 5200 * ms, op: "refund", cost: 3, res: 2, reason: "window 3 counts no more"},     //
			{at: 5200 * ms, op: "peek", cost: 1, want: step{allowed: true, remaining: 8}},         // 10-1-1
		},
	},
	{
		name: "SlidingWindowLog/givesBackFromTheChargesOwnEntryWhileInTheWindow",
		rule: rule("5/second", core.SlidingWindowLog, 0),
		steps: []quotaStep{
			{at: 0, op: "take", cost: 1, want: step{allowed: true, remaining: 4}},
			{at: 100 * ms, op: "reserve", cost: 3, want: step{allowed: true, remaining: 1}},
			{at: 200 * ms, op: "take", cost: 1, want: step{allowed: true, remaining: 0}},
			{at: 300 * ms, op: "refund", cost: 2, res: 0, reason: "the entry at 100ms: 3 → 1; totals 1, 2, 3"},
			{at: 300 * ms, op: "peek", cost: 1, want: step{allowed: true, remaining: 1}},
			{at: 1050 * ms, op: "peek", cost: 1, want: step{allowed: true, remaining: 2}}, // the entry at 0 left
			{at: 1050 * ms, op: "reserve", cost: 3, want: step{allowed: true, remaining: 0}},
			// Full: the entry at 100ms, of 1 now, frees a request at 1.1s,
			// the one at 200ms two at 1.2s.
			{at: 1050 * ms, op: "peek", cost: 1, want: step{remaining: 0, retry: 50 * ms}},
			{at: 1050 * ms, op: "peek", cost: 2, want: step{remaining: 0, retry: 150 * ms}},
			{at: 2100 * ms, op: "take", cost: 5, want: step{allowed: true, remaining: 0}},
			{at: 2100 * ms, op: "refund", cost: 3, res: 1, reason: "the charge at 1.05s left the window: nothing"},
			{at: 2100 * ms, op: "peek", cost: 1, want: step{remaining: 0, retry: s}},
			{at: 3200 * ms, op: "reserve", cost: 2, want: step{allowed: true, remaining: 3}},
			{at: 3200 * ms, op: "refund", cost: 2, res: 2, reason: "the entry costs nothing and leaves the log"},
			{at: 3200 * ms, op: "peek", cost: 5, want: step{allowed: true, remaining: 0}},
			{at: 3300 * ms, op: "take", cost: 5, want: step{allowed: true, remaining: 0}},
			{at: 3300 * ms, op: "peek", cost: 1, want: step{remaining: 0, retry: s}},
		},
	},
	{
		name: "TokenBucket/movesTheArrivalTimeBackNeverBeforeNow",
		rule: rule("10/second", core.TokenBucket, 0), // a token per 100ms, 10 at most
		steps: []quotaStep{
			{at: 0, op: "reserve", cost: 4, want: step{allowed: true, remaining: 6}}, // TAT 400ms
			{at: 0, op: "refund", cost: 3, res: 0, reason: "TAT 400 → 100ms"},
			{at: 0, op: "peek", cost: 1, want: step{allowed: true, remaining: 8, reset: 200 * ms}},
			{at: 50 * ms, op: "reserve", cost: 4, want: step{allowed: true, remaining: 5}}, // TAT 500ms
			{at: 350 * ms, op: "refund", cost: 4, res: 1, reason: "TAT 500 → 350ms, not 100"},
			{at: 350 * ms, op: "peek", cost: 1, want: step{allowed: true, remaining: 9, reset: 100 * ms}},
			{at: 350 * ms, op: "take", cost: 10, want: step{allowed: true, remaining: 0, reset: s}},
		},
	},
	{
		// A bucket that filled up again since the charge has forgotten it:
		// giving it back then would hold more than the burst had been
		// spent, so a request held past the refill (charge by outcome)
		// would buy a second burst. Each key keeps when a charge last found
		// it full; charges made before that are all back already.
		name: "TokenBucket/givesNothingBackOfAChargeTheBucketHasReplenished",
		rule: rule("10/second", core.TokenBucket, 0), // a token per 100ms, 10 at most
		steps: []quotaStep{
			{at: 0, op: "reserve", cost: 1, want: step{allowed: true, remaining: 9}},                    // TAT 100ms
			{at: s, op: "take", cost: 10, want: step{allowed: true, remaining: 0, reset: s}},            // full again: TAT 2s
			{at: s, op: "refund", cost: 1, res: 0, reason: "replenished by 100ms, at 1s at the latest"}, //
			{at: s, op: "peek", cost: 1, want: step{remaining: 0, retry: 100 * ms}},                     // still empty
			{at: 1500 * ms, op: "reserve", cost: 5, want: step{allowed: true, remaining: 0}},            // TAT 2.5s
			{at: 1900 * ms, op: "refund", cost: 5, res: 1, reason: "not yet replenished: TAT 2.5 → 2s"},
			{at: 1900 * ms, op: "peek", cost: 1, want: step{allowed: true, remaining: 8, reset: 200 * ms}},
		},
	},
	{
		// A charge made from a full bucket, then held while the bucket
		// fills up again and a burst spends it: the charge is already back,
		// even though at+depth has not passed (a bound by at+depth would
		// give 2 tokens on top of the burst here).
		name: "TokenBucket/givesNothingBackOnceTheBucketWasFullAgain",
		rule: rule("10/second", core.TokenBucket, 0),
		steps: []quotaStep{
			{at: 0, op: "reserve", cost: 2, want: step{allowed: true, remaining: 8}},                // TAT 200ms
			{at: 500 * ms, op: "take", cost: 10, want: step{allowed: true, remaining: 0, reset: s}}, // full at 500ms: TAT 1.5s
			{at: 500 * ms, op: "refund", cost: 2, res: 0, reason: "the bucket was full at 500ms, after the charge"},
			{at: 500 * ms, op: "peek", cost: 1, want: step{remaining: 0, retry: 100 * ms}},
		},
	},
	{
		// A charge the bucket has not replenished yet, because later
		// charges kept it from filling, comes back in full, long after
		// at+depth: as if it had cost nothing.
		name: "TokenBucket/givesBackAChargeTheBucketNeverRefilled",
		rule: rule("10/second", core.TokenBucket, 0),
		steps: []quotaStep{
			{at: 0, op: "take", cost: 10, want: step{allowed: true, remaining: 0, reset: s}},               // TAT 1s
			{at: 900 * ms, op: "reserve", cost: 1, want: step{allowed: true, remaining: 8}},                // TAT 1.1s
			{at: 950 * ms, op: "take", cost: 8, want: step{allowed: true, remaining: 0, reset: 950 * ms}},  // TAT 1.9s
			{at: 1850 * ms, op: "take", cost: 1, want: step{allowed: true, remaining: 8, reset: 150 * ms}}, // TAT 2s
			{at: 1950 * ms, op: "refund", cost: 1, res: 0, reason: "never full since 900ms: TAT 2 → 1.9s"},
			{at: 1950 * ms, op: "peek", cost: 1, want: step{allowed: true, remaining: 9, reset: 100 * ms}}, // full
		},
	},
	{
		name: "LeakyBucket/givesTheSlotBackToTheQueue",
		rule: rule("10/second", core.LeakyBucket, 0),
		steps: []quotaStep{
			{at: 0, op: "reserve", cost: 1, want: step{allowed: true, remaining: 9}},
			{at: 0, op: "reserve", cost: 1, want: step{allowed: true, remaining: 8, delay: 100 * ms}},
			{at: 0, op: "reserve", cost: 1, want: step{allowed: true, remaining: 7, delay: 200 * ms}},
			{at: 50 * ms, op: "refund", cost: 1, res: 1, reason: "the client held for 100ms left: TAT 300 → 200ms"},
			{at: 50 * ms, op: "reserve", cost: 1, want: step{allowed: true, remaining: 7, delay: 150 * ms}},
		},
	},
}

func runRefunds(t *testing.T, f Factory) {
	for _, sc := range quotaScenarios {
		t.Run(sc.name, func(t *testing.T) {
			st, clock := newStore(t, f)
			q := quotaStore(t, st)
			ctx := context.Background()
			key := keyFor(t, "k")
			var charges []core.Charge
			check := scenario{name: sc.name, rule: sc.rule}
			for i, s := range sc.steps {
				clock.Set(s.at)
				var d core.Decision
				switch s.op {
				case "take":
					d = take(t, st, key, sc.rule, s.cost)
				case "peek":
					var err error
					if d, err = q.Peek(ctx, key, sc.rule, s.cost); err != nil {
						t.Fatalf("step %d: Peek: %v", i, err)
					}
				case "reserve":
					var c core.Charge
					var err error
					if d, c, err = q.Reserve(ctx, key, sc.rule, s.cost); err != nil {
						t.Fatalf("step %d: Reserve: %v", i, err)
					}
					if d.Allowed && (c.Cost != s.cost || !c.At.Equal(Epoch.Add(s.at))) {
						t.Fatalf("step %d: Reserve charged %+v; want %d at the store's time %v", i, c, s.cost, Epoch.Add(s.at))
					}
					charges = append(charges, c)
				case "refund":
					if err := q.Refund(ctx, key, sc.rule, charges[s.res], s.cost); err != nil {
						t.Fatalf("step %d (%s): Refund: %v", i, s.reason, err)
					}
					continue
				}
				want := s.want
				want.at, want.cost = s.at, s.cost
				check.steps = append(check.steps[:0], want)
				check.check(t, 0, d)
				if t.Failed() {
					t.Fatalf("at step %d (%s %d at %v)", i, s.op, s.cost, s.at)
				}
			}
		})
	}
}

// runReservationRules drives core.Limiter's reservations on the store: a
// settle above the estimate, a second settle, a settle after cancel and a
// settle of a denied reservation are errors that leave the budget as it
// was; of concurrent cancels exactly one gives back.
func runReservationRules(t *testing.T, f Factory) {
	forEachAlgorithm(t, f, func(t *testing.T, alg core.Algorithm, st core.Store, _ *ManualClock, key string) {
		quotaStore(t, st)
		ctx := context.Background()
		// Not closed: the suite closes the store. A slow store fails the
		// test rather than being answered by a fallback store.
		lim := core.New(core.WithStore(st), core.WithTimeout(10*time.Second), core.WithFailurePolicy(core.FailClosed))
		r := rule("5/minute", alg, 0)
		left := func(want int64, when string) {
			t.Helper()
			d, err := lim.Peek(ctx, key, r, 0)
			if err != nil || d.Remaining != want {
				t.Fatalf("%s: Peek says %+v, %v; want %d remaining", when, d, err, want)
			}
		}
		res, err := lim.Reserve(ctx, key, r, 3)
		if err != nil || !res.OK() || res.Estimate() != 3 {
			t.Fatalf("Reserve(3): %+v, %v", res, err)
		}
		left(2, "after reserving 3")
		if err := res.Settle(ctx, 4); err == nil || errors.Is(err, core.ErrReservationDone) {
			t.Fatalf("Settle(4) of a reservation of 3: %v; want an error", err)
		}
		if err := res.Settle(ctx, -1); err == nil {
			t.Fatal("Settle(-1): no error")
		}
		left(2, "after refused settles")
		if err := res.Settle(ctx, 1); err != nil {
			t.Fatalf("Settle(1): %v", err)
		}
		left(4, "after settling 3 to 1")
		if err := res.Settle(ctx, 0); !errors.Is(err, core.ErrReservationDone) {
			t.Fatalf("second Settle: %v; want ErrReservationDone", err)
		}
		if err := res.Cancel(ctx); !errors.Is(err, core.ErrReservationDone) {
			t.Fatalf("Cancel after Settle: %v; want ErrReservationDone", err)
		}
		left(4, "after a second settle and a cancel")

		res, err = lim.Reserve(ctx, key, r, 2)
		if err != nil || !res.OK() {
			t.Fatalf("Reserve(2): %+v, %v", res, err)
		}
		if err := res.Cancel(ctx); err != nil {
			t.Fatalf("Cancel: %v", err)
		}
		if err := res.Settle(ctx, 0); !errors.Is(err, core.ErrReservationDone) {
			t.Fatalf("Settle after Cancel: %v; want ErrReservationDone", err)
		}
		left(4, "after a cancel")

		if res, err := lim.Reserve(ctx, key, r, 5); err != nil || res.OK() || res.Decision.Never {
			t.Fatalf("Reserve(5) with 4 left: %+v, %v; want denied, retryable", res, err)
		} else if err := res.Cancel(ctx); !errors.Is(err, core.ErrNotReserved) {
			t.Fatalf("Cancel of a denied reservation: %v; want ErrNotReserved", err)
		}
		if res, err := lim.Reserve(ctx, key, r, 6); err != nil || res.OK() || !res.Decision.Never {
			t.Fatalf("Reserve(6) against 5/minute: %+v, %v; want Never", res, err)
		}
		left(4, "after denied reservations")

		res, err = lim.Reserve(ctx, key, r, 4)
		if err != nil || !res.OK() {
			t.Fatalf("Reserve(4): %+v, %v", res, err)
		}
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for range 8 {
			wg.Add(1)
			go func() { defer wg.Done(); errs <- res.Cancel(ctx) }()
		}
		wg.Wait()
		close(errs)
		gave := 0
		for err := range errs {
			switch {
			case err == nil:
				gave++
			case !errors.Is(err, core.ErrReservationDone):
				t.Fatalf("concurrent Cancel: %v", err)
			}
		}
		if gave != 1 {
			t.Fatalf("%d of 8 concurrent cancels gave back; want 1", gave)
		}
		left(4, "after concurrent cancels")
	})
}

// runRefundInvalid checks the store's own guard: a refund of more than
// the charge, or a negative one, is an error and changes nothing.
func runRefundInvalid(t *testing.T, f Factory) {
	forEachAlgorithm(t, f, func(t *testing.T, alg core.Algorithm, st core.Store, _ *ManualClock, key string) {
		q := quotaStore(t, st)
		ctx := context.Background()
		r := rule("5/minute", alg, 0)
		_, c, err := q.Reserve(ctx, key, r, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, amount := range []int64{3, -1, 1 << 62} {
			if err := q.Refund(ctx, key, r, c, amount); err == nil {
				t.Fatalf("Refund(%d) of a charge of 2: no error", amount)
			}
		}
		if d, err := q.Peek(ctx, key, r, 0); err != nil || d.Remaining != 3 {
			t.Fatalf("after refused refunds: %+v, %v; want 3 remaining", d, err)
		}
	})
}

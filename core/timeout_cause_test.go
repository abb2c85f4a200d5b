package core

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"syscall"
	"testing"
	"time"
)

// causeStore keeps its deadlines and, when one passes, says why, as
// redisstore does for a refused connection.
type causeStore struct{ cause error }

func (s *causeStore) Reset(context.Context, string, Rule) error { return nil }
func (s *causeStore) Close() error                              { return nil }

func (s *causeStore) KeepsDeadlines() bool { return true }

func (s *causeStore) Take(ctx context.Context, key string, rule Rule, cost int64) (Decision, error) {
	<-ctx.Done()
	return Decision{}, fmt.Errorf("store: take %q: %w", key, s.cause)
}

// A store's own error at the deadline reaches the caller, the observer and
// the log inside the limiter's: "did not answer within 10ms" alone does not
// say that the connection was refused.
func TestLimiter_timeoutKeepsTheStoresCause(t *testing.T) {
	refused := fmt.Errorf("dial tcp 127.0.0.1:1: connect: %w", syscall.ECONNREFUSED)
	causes := map[string]error{
		"deadline with cause": fmt.Errorf("%w (last connection attempt: %w)", context.DeadlineExceeded, refused),
		"cause alone":         refused,
	}
	for name, cause := range causes {
		t.Run(name, func(t *testing.T) {
			var log bytes.Buffer
			var events []Event
			lim := closeLater(t, WithStore(&causeStore{cause: cause}), WithTimeout(10*time.Millisecond),
				WithFailurePolicy(FailClosed), WithProbeInterval(time.Hour),
				WithLogger(slog.New(slog.NewTextHandler(&log, nil))),
				WithObserver(ObserverFunc(func(e Event) { events = append(events, e) })))
			_, err := lim.Allow(context.Background(), "k", MustRule("1/second", 0))
			if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, syscall.ECONNREFUSED) {
				t.Errorf("errors.Is(%v, DeadlineExceeded / ECONNREFUSED) = %v, %v; want both",
					err, errors.Is(err, context.DeadlineExceeded), errors.Is(err, syscall.ECONNREFUSED))
			}
			for _, want := range []string{"did not answer within 10ms", "connection refused"} {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("error %v; want it to say %q", err, want)
				}
				if !strings.Contains(log.String(), want) {
					t.Errorf("log %q; want it to say %q", log.String(), want)
				}
			}
			var failures int
			for _, e := range events {
				if e.Kind == EventStoreDown || e.Kind == EventStoreError {
					failures++
					if !errors.Is(e.Err, syscall.ECONNREFUSED) || !errors.Is(e.Err, context.DeadlineExceeded) {
						t.Errorf("%v event's Err %v; want it to wrap the refusal and the deadline", e.Kind, e.Err)
					}
				}
			}
			if failures != 2 {
				t.Errorf("heard %d store-down and store-error events, want 2: %+v", failures, events)
			}
		})
	}
}

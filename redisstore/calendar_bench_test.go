package redisstore

import (
	"context"
	"testing"
	"time"

	"github.com/limitkit/limitkit/core"
)

// A calendar month beside an ordinary fixed window on Redis: the calendar
// adds the instance's computing of three windows' boundaries and four
// arguments, and calendar requests skip the joint batched script.
func BenchmarkTake_calendar(b *testing.B) {
	c := benchClient(b, true)
	for _, tc := range []struct {
		name string
		rule core.Rule
	}{
		{"fixed-window", core.MustRule("100000/month", core.FixedWindow)},
		{"calendar-month", core.MustRule("100000 per calendar month in Europe/Paris", 0)},
	} {
		for _, batch := range []bool{false, true} {
			name := tc.name
			if batch {
				name += "/batched"
			}
			b.Run(name, func(b *testing.B) {
				opts := []Option{WithTimeout(time.Second)}
				if batch {
					opts = append(opts, WithBatching(50*time.Microsecond, 0))
				}
				st := New(c, opts...)
				defer st.Close()
				runParallel(b, func(ctx context.Context, key string) error {
					_, err := st.Take(ctx, key, tc.rule, 1)
					return err
				})
			})
		}
		b.Run(tc.name+"/serial", func(b *testing.B) {
			st := New(c, WithTimeout(time.Second))
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := st.Take(ctx, "serial", tc.rule, 1); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

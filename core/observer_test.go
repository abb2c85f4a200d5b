package core

import (
	"context"
	"fmt"
	"testing"
)

func TestWithObserver_everyObserverHearsEveryEventInOrder(t *testing.T) {
	var heard []string
	obs := func(name string) Observer {
		return ObserverFunc(func(e Event) { heard = append(heard, name+":"+e.Kind.String()) })
	}
	lim, _ := clockedLimiter(t, WithObserver(obs("a")), WithObserver(nil), WithObserver(obs("b")), WithObserver(obs("c")))
	if _, err := lim.Allow(context.Background(), "k", MustRule("1/second", 0)); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(heard); got != "[a:decision b:decision c:decision]" {
		t.Errorf("heard %s", got)
	}
}

func TestEnumsHaveNames(t *testing.T) {
	tests := []struct {
		got, want string
	}{
		{EventStoreDown.String(), "store-down"},
		{EventKind(9).String(), "EventKind(9)"},
		{ActionFallback.String(), "fallback"},
		{Action(9).String(), "Action(9)"},
		{FailurePolicy(0).String(), "fallback"},
		{FailClosed.String(), "fail-closed"},
		{FailurePolicy(9).String(), "FailurePolicy(9)"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q; want %q", tt.got, tt.want)
		}
	}
}

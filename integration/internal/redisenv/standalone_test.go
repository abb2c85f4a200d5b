package redisenv

import (
	"testing"
	"time"
)

// answersWithin polls answers for up to 5s: a running server answers at
// once, but a just-thawed one, or one on a loaded machine, may miss a single
// 150ms probe.
func answersWithin(addr string) (bool, error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		ok, err := answers(addr)
		if ok || err != nil || time.Now().After(deadline) {
			return ok, err
		}
	}
}

// The probe Pause relies on must tell a running server from a frozen one, or
// Pause would return at once (always "frozen") or never (always "answers").
func TestAnswersTellsRunningFromPaused(t *testing.T) {
	t.Parallel()
	srv := StartStandalone(t)
	if ok, err := answersWithin(srv.Addr()); err != nil || !ok {
		t.Fatalf("running server: answers = %v, %v; want true", ok, err)
	}
	srv.Pause() // returns only once answers reports false
	if ok, err := answers(srv.Addr()); err != nil || ok {
		t.Fatalf("paused server: answers = %v, %v; want false", ok, err)
	}
	srv.Unpause()
	if ok, err := answersWithin(srv.Addr()); err != nil || !ok {
		t.Fatalf("unpaused server: answers = %v, %v; want true", ok, err)
	}
}

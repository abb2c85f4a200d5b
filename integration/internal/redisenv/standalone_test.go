package redisenv

import "testing"

// The probe Pause relies on must tell a running server from a frozen one, or
// Pause would return at once (always "frozen") or never (always "answers").
func TestAnswersTellsRunningFromPaused(t *testing.T) {
	t.Parallel()
	srv := StartStandalone(t)
	if ok, err := answers(srv.Addr()); err != nil || !ok {
		t.Fatalf("running server: answers = %v, %v; want true", ok, err)
	}
	srv.Pause() // returns only once answers reports false
	if ok, err := answers(srv.Addr()); err != nil || ok {
		t.Fatalf("paused server: answers = %v, %v; want false", ok, err)
	}
	srv.Unpause()
	if ok, err := answers(srv.Addr()); err != nil || !ok {
		t.Fatalf("unpaused server: answers = %v, %v; want true", ok, err)
	}
}

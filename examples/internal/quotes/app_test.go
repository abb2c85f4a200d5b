package quotes

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/limitkit/limitkit/internal/redistest"
)

func TestAddr_loopbackUnlessTold(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{nil, "127.0.0.1:8080"},
		{map[string]string{"PORT": "9090"}, "127.0.0.1:9090"},
		{map[string]string{"ADDR": ":8080", "PORT": "9090"}, ":8080"},
		{map[string]string{"ADDR": "[::1]:7070"}, "[::1]:7070"},
	} {
		if got := Addr(func(k string) string { return tc.env[k] }); got != tc.want {
			t.Errorf("Addr(%v) = %q, want %q", tc.env, got, tc.want)
		}
	}
}

func TestCheck_namesTheRedisThatDoesNotAnswer(t *testing.T) {
	// A port nothing listens on: bound, then closed.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	app, err := NewApp("redis://:hunter2@" + addr + "/0")
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	_, err = app.Check(context.Background())
	if err == nil {
		t.Fatal("Check passed with no Redis listening")
	}
	msg := err.Error()
	if !strings.Contains(msg, addr) || !strings.Contains(msg, "refused") {
		t.Errorf("Check's error %q should name %s and the refusal", msg, addr)
	}
	if strings.Contains(msg, "hunter2") {
		t.Errorf("Check's error %q shows the password", msg)
	}
}

func TestCheck_answersOnMemoryAndRedis(t *testing.T) {
	app, err := NewApp("")
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	if got, err := app.Check(context.Background()); err != nil || got != "memory store" {
		t.Errorf("memory: Check = %q, %v", got, err)
	}
	srv := redistest.Start(t)
	rapp, err := NewApp("redis://" + srv.Addr() + "/0")
	if err != nil {
		t.Fatal(err)
	}
	defer rapp.Close()
	if got, err := rapp.Check(context.Background()); err != nil || !strings.Contains(got, srv.Addr()) {
		t.Errorf("redis: Check = %q, %v", got, err)
	}
}

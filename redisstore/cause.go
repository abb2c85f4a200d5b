package redisstore

// Why a call failed. go-redis keeps a failed connection attempt inside its
// pool: a command against a server that refuses connections ends when its
// context does, as "context deadline exceeded", and the refusal is only
// printed to go-redis's own logger. A hook on the client remembers the last
// failed attempt, so that the store's error can name it.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// dialCause is a go-redis hook that remembers the last connection attempt
// that failed, until a later attempt succeeds or Redis answers a command.
type dialCause struct {
	last atomic.Pointer[error]
}

// watch installs c on client. A Cluster client or a Ring dials through its
// nodes' hooks, not its own: c goes on every node a Cluster client makes
// from now on (it makes them on first use, so a client that has not yet
// run a command is watched whole), and on a Ring's shards, those it has
// (it makes them at once) and those it makes later.
func (c *dialCause) watch(client redis.UniversalClient) {
	add := func(node *redis.Client) { node.AddHook(c) }
	switch cl := client.(type) {
	case *redis.ClusterClient:
		cl.OnNewNode(add)
	case *redis.Ring:
		cl.OnNewNode(add)
		_ = cl.ForEachShard(context.Background(), func(_ context.Context, node *redis.Client) error {
			add(node)
			return nil
		})
	default:
		client.AddHook(c)
	}
}

// DialHook implements redis.Hook: it records a failed attempt, and forgets
// it when one succeeds. An attempt the caller cancelled says nothing about
// the server and is not recorded.
func (c *dialCause) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := next(ctx, network, addr)
		switch {
		case err == nil:
			c.forget()
		case !errors.Is(err, context.Canceled):
			c.last.Store(&err)
		}
		return conn, err
	}
}

// ProcessHook implements redis.Hook: a command Redis answered, even with an
// error reply, shows the connection works.
func (c *dialCause) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if answered(err) {
			c.forget()
		}
		return err
	}
}

// ProcessPipelineHook implements redis.Hook, as ProcessHook does.
func (c *dialCause) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		if answered(err) {
			c.forget()
		}
		return err
	}
}

// forget drops the recorded failure; the load first keeps the common case,
// nothing recorded, free of writes to shared memory.
func (c *dialCause) forget() {
	if c.last.Load() != nil {
		c.last.Store(nil)
	}
}

// answered reports whether err, a command's, came from Redis itself (or
// there was none): the connection carried it.
func answered(err error) bool {
	var reply redis.Error
	return err == nil || errors.As(err, &reply)
}

// explain returns err, a failed call's, with the last failed connection
// attempt attached, if one is recorded and err does not already say it:
// "context deadline exceeded (last connection attempt: dial tcp
// 127.0.0.1:6379: connect: connection refused)". errors.Is finds both
// errors in the result. An error reply from Redis is returned as it is.
func (c *dialCause) explain(err error) error {
	if c == nil || answered(err) {
		return err
	}
	p := c.last.Load()
	if p == nil || errors.Is(err, *p) {
		return err
	}
	return fmt.Errorf("%w (last connection attempt: %w)", err, *p)
}

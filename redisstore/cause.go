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
	"runtime"
	"sync"
	"sync/atomic"
	"weak"

	"github.com/redis/go-redis/v9"
)

// dialCause is a go-redis hook that remembers the last connection attempt
// that failed, until a later attempt succeeds or Redis answers a command.
type dialCause struct {
	last atomic.Pointer[error]
}

// causes holds the dialCause of each client watched, so that every Store
// on one client shares one hook: a hook per Store would lengthen every
// command's chain of hooks with each New. The keys are weak, and a
// client's entry goes when the client does.
var causes sync.Map // weak.Pointer[client type] → *dialCause

// causeOf returns the dialCause watching client, installing one the first
// time.
func causeOf(client redis.UniversalClient) *dialCause {
	switch cl := client.(type) {
	case *redis.Client:
		return shared(cl, func(c *dialCause) { cl.AddHook(c) })
	case *redis.ClusterClient:
		// It dials through its nodes' hooks, not its own, and makes its
		// nodes on first use: a client that has not yet run a command is
		// watched whole.
		return shared(cl, func(c *dialCause) { cl.OnNewNode(func(node *redis.Client) { node.AddHook(c) }) })
	case *redis.Ring:
		// Its shards dial, and it makes them at once, and again when its
		// addresses change.
		return shared(cl, func(c *dialCause) {
			cl.OnNewNode(func(node *redis.Client) { node.AddHook(c) })
			_ = cl.ForEachShard(context.Background(), func(_ context.Context, node *redis.Client) error {
				node.AddHook(c)
				return nil
			})
		})
	}
	c := new(dialCause) // another implementation: hooked by each Store
	client.AddHook(c)
	return c
}

func shared[T any](client *T, install func(*dialCause)) *dialCause {
	key := weak.Make(client)
	if c, ok := causes.Load(key); ok {
		return c.(*dialCause)
	}
	c, loaded := causes.LoadOrStore(key, new(dialCause))
	if loaded {
		return c.(*dialCause)
	}
	install(c.(*dialCause))
	runtime.AddCleanup(client, func(k weak.Pointer[T]) { causes.Delete(k) }, key)
	return c.(*dialCause)
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
	return err == nil || isReply(err)
}

// isReply is answered's test for an error, apart so that the common case,
// no error, allocates nothing: errors.As needs reply on the heap.
func isReply(err error) bool {
	var reply redis.Error
	return errors.As(err, &reply)
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

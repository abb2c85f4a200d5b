package redisstore_test

import (
	"context"
	"fmt"
	"time"

	"github.com/limitkit/limitkit/core"
	"github.com/limitkit/limitkit/redisstore"
	"github.com/redis/go-redis/v9"
)

// Every instance of an app that runs this shares its limits through Redis.
func Example() {
	rdb := redis.NewClient(&redis.Options{
		Addr:                  "localhost:6379",
		ContextTimeoutEnabled: true, // let the store's deadline close the call
	})
	core.SetDefault(core.New(core.WithStore(redisstore.New(rdb))))
}

// A Cluster client works as is: every key of one decision carries the same
// hash tag, so each decision's script runs on one node, and decisions that
// arrive together for one master travel together, one pipeline per master.
func ExampleNew_cluster() {
	rdb := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs:                 []string{"10.0.0.1:6379", "10.0.0.2:6379", "10.0.0.3:6379"},
		ContextTimeoutEnabled: true,
	})
	store := redisstore.New(rdb,
		redisstore.WithPrefix("quotes-api:"),
		redisstore.WithTimeout(50*time.Millisecond),
	)
	defer store.Close()

	rule := core.MustRule("10/second;1000/hour", core.TokenBucket)
	d, err := store.Take(context.Background(), "user:42", rule, 1)
	if err != nil {
		fmt.Println("Redis failed; the limiter's failure policy decides:", err)
		return
	}
	fmt.Println(d.Allowed, d.Remaining)
}

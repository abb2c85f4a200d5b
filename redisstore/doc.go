// Package redisstore is a core.Store in Redis, shared by every instance of
// an application, exact, and at home on Redis Cluster:
//
//	rdb := redis.NewClient(&redis.Options{Addr: "localhost:6379", ContextTimeoutEnabled: true})
//	core.SetDefault(core.New(core.WithStore(redisstore.New(rdb))))
//
// New takes any redis.UniversalClient: a plain client, a Sentinel failover
// client, a Cluster client or a Ring.
//
// # Decisions
//
// Every decision, including one on a rule of several limits, is one Lua
// script run in one round trip (EVALSHA, falling back to EVAL when Redis has
// lost the script), so it is atomic: no other request can slip between the
// check and the charge. The scripts repeat core's arithmetic step for step in
// integer microseconds, so the Redis store and the memory store give the same
// decision for the same sequence of (time, key, cost); the conformance suite
// proves it.
//
// The scripts are Lua files in lua/, composed at start-up (see scripts.go),
// and every composed script is in testdata/, whole, as Redis runs it: a
// line number in a Redis error is a line of one of those files, and each
// runs by itself. Its numbers come packed in one argument, as little-endian
// doubles, which costs Redis far less than a decimal argument each: now in
// µs or NaN for Redis's TIME, cost, TTL slack in ms, the mode (0 to charge,
// 1 to peek), then count, window in µs and burst per limit. redis-cli
// cannot send those bytes, so a line put before the script packs them; the
// reply is five doubles packed the same way, which od reads. For example,
// one decision of cost 1 against 5 per minute with a burst of 5:
//
//	redis-cli eval "$(printf "local ARGV = {struct.pack('<ddddddd', 0/0, 1, 0, 0, 5, 60000000, 5)} "; cat redisstore/testdata/token-bucket.lua)" 1 key | head -c 40 | od -A n -t f8 -w8
//
// # Time
//
// The scripts read the time from Redis (TIME), never from the application,
// so instances whose clocks disagree still agree on every limit. (Redis 5 and
// later replicate scripts by their effects, which makes TIME safe.)
// WithClock replaces it with a driven clock, for tests only.
//
// # Keys and hash tags
//
// The state of key under a rule lives in keys named
//
//	<prefix>{<key>}:<algorithm>:<number of limits>:<limit index>
//
// for example limitkit:{203.0.113.7}:sliding-window-counter:1:0, plus a
// ":sum" key beside each sliding window log. The braces are a Cluster hash
// tag: Cluster places a key by its tag alone, so all keys of one decision
// share a slot and one script may touch them all. A key that is empty, longer
// than 200 bytes, contains a brace or starts with "#" is replaced in the tag
// by "#" and its SHA-256 in hex, so that no key can break the tag or make
// names unbounded, and no verbatim key can pose as a hashed one.
//
// State is kept per key and rule shape (core.Rule.Shape: the algorithm,
// the limits and, for the buckets, the burst), as in the memory store, in
// keys named prefix{tag}:<shape>:<limit>: two rules checked on one key never
// meet, and Reset deletes the state of the shape it is given.
//
// The sliding window log keeps, in one list, the total of the costs that
// have left it and then a time and a running total per admitted request
// with a distinct time, so at most Count pairs (core.MaxLogCount caps it)
// when costs are at least one. Both of its searches, for the first request
// still in the window and for the one whose expiry frees enough, are binary
// searches over the running totals: a decision reads a few dozen entries
// however long the log is and whatever the cost.
//
// A key's concurrency leases (core.ConcurrencyStore: Acquire, Renew,
// Release, one round trip each, scripts lua/concurrency-*.lua run as they
// are) live in one sorted set, prefix{tag}:concurrency, of lease ids scored
// by expiry in µs of Redis's TIME. Each script first drops the leases whose
// expiry has come, so the slots of an instance that died come back within
// the lease TTL with no one to release them; Renew never brings back a
// lease that has expired, and Release of a lease the set does not hold
// changes nothing. The set's TTL covers its latest lease.
//
// # TTLs
//
// Every write sets a TTL that ends when the state would be no different from
// no state at all: the end of a fixed window, of two windows for the sliding
// counter, the bucket's theoretical arrival time, the newest log entry plus
// the window. Idle keys therefore vanish by themselves, and a database used
// only by this store empties once its windows have passed.
//
// # Deadlines
//
// A call whose context has no deadline gets the store's timeout
// (WithTimeout, default 100ms). go-redis enforces a context's deadline on the
// connection only with ContextTimeoutEnabled; without it, the store still
// returns at the deadline, but the connection stays busy until the client's
// ReadTimeout. Enable it.
//
// # Deny cache
//
// WithDenyCache(n) lets the store answer a request in process when Redis
// recently denied the same key under the same rule at the same cost, until
// the denial's RetryAfter runs out: a client hammering a limit then costs no
// round trips. It never denies a request Redis would admit, because every
// algorithm's retry-after is the earliest admission if no other traffic
// comes, and other instances' traffic can only push admission later. A
// request of another cost goes to Redis: a larger one is denied too, but for
// longer, and only Redis can say how long. Only three things can
// free room sooner: a Reset from another instance, an operator deleting
// keys, or Redis losing its data; the bound is that this instance may then
// go on denying for at most the RetryAfter Redis last gave it, and its first
// admission drops the stale denial. Requests costing more than a limit can
// ever admit always go to Redis, which answers Never.
//
// It is off by default, because the answers it gives are exact in Allowed
// and RetryAfter but not in Remaining, which is Redis's figure from the
// denial, and because of the Reset bound above: exactness is this package's
// promise, and the cache is a trade a user should choose. It holds at most n
// keys, four rules each.
//
// # Batching
//
// WithBatching(window, max) sends concurrent decisions together when the
// first has waited window or max are waiting. On a plain client (standalone,
// or Sentinel's failover client) the decisions of a batch that share an
// algorithm go as one call of that algorithm's batched script, which runs
// them one after another, each exactly as alone: Redis then parses, looks up
// and starts one command per algorithm and batch instead of one per
// decision, which is most of its cost for a one-limit decision. On a
// Cluster client or a Ring, whose keys live on several servers that one
// script cannot span, the batch is a pipeline of one EVALSHA per decision.
// Either way each caller gets its own decision and its own error (state this
// store did not write fails only the decision that reads it), and only the
// round trip is shared. It helps when many requests wait at once, and costs
// up to window of added latency. A caller whose context ends first returns
// its context's error; its decision may still be made.
//
// By default a store on a *redis.Client (standalone, or Sentinel's failover
// client) or on a *redis.ClusterClient coalesces, as WithCoalescing(0, 0);
// on a Cluster it coalesces each master's decisions apart, so that a batch
// is a pipeline to one master and a master that fails or stalls holds up
// only the decisions on its own slots. A store on a Ring sends each
// decision alone unless told otherwise, because there one batch's decisions
// on a healthy shard would wait for those on a failing one. Coalescing
// sends a decision at once, on its caller's goroutine, while
// fewer than inFlight batches are in flight, and otherwise holds it for the
// next batch, which leaves as soon as one in flight comes back with every
// decision that arrived meanwhile (up to max). An idle store so adds no
// latency, and a busy one sends batches as large as its load makes them,
// where a window is too long when idle and too short under load. Batches
// travel as under WithBatching, which replaces coalescing with a window;
// WithoutBatching sends each decision alone. As under WithBatching, a
// caller whose context ends while its decision waits in a batch returns its
// context's error, and its decision may still be made. A go-redis hook on
// the client sees a batch as a pipeline (ProcessPipelineHook), not as
// single commands. Until a Cluster client has loaded the slot map, the
// store loads it in the background and sends the decisions meanwhile
// through one coalescer, so that no caller waits past its deadline for the
// map.
//
// # Peek, reserve and refund
//
// Store implements core.QuotaStore, each operation in one round trip. Peek
// runs the algorithm's decision script in its peek mode, which decides and
// charges nothing (a sliding log may still drop entries that have left its
// window, as any decision does); it neither reads nor feeds the deny
// cache. Reserve is Take; every decision's reply carries the time Redis
// decided at, which the reservation keeps, so that a refund finds its
// window whichever instance makes it. Refund runs the algorithm's refund
// script (lua/refund.lua), which gives back what the charge still counts
// for (see core.Reservation) at Redis's time, keeps every key's TTL, and
// forgets the key's cached denials. Its keys are the decision's, so it is
// as Cluster-safe; it is not batched.
package redisstore

-- limitkit redisstore: release a concurrency lease (core.ConcurrencyStore).
-- Standalone: redisstore/concurrency.go runs this file as it is.
--
-- KEYS[1]: the key's leases (see concurrency-acquire.lua).
-- ARGV: now in µs ("" to read Redis's TIME), lease id.
-- Reply: 1 released; 0 the lease is not live (unknown, expired or already
--        released), and nothing changed; -1 corrupt state.
--
-- The key's TTL is left as it is: it covers the latest lease, which this
-- one was at most, and Redis deletes the set with its last member.
--
--   redis-cli --eval redisstore/lua/concurrency-release.lua k , "" 0123abcd
local key = KEYS[1]
local now = ARGV[1]
if now == '' then
  local t = redis.call('TIME')
  now = t[1] * 1000000 + t[2]
else
  now = tonumber(now)
end
local dropped = redis.pcall('ZREMRANGEBYSCORE', key, '-inf', string.format('%.0f', now))
if type(dropped) == 'table' and dropped.err then
  return -1
end
return redis.call('ZREM', key, ARGV[2])

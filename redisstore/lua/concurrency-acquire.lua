-- limitkit redisstore: acquire a concurrency lease (core.ConcurrencyStore).
-- Standalone: redisstore/concurrency.go runs this file as it is.
--
-- KEYS[1]: the key's leases, a sorted set of lease ids scored by expiry in
--          µs; a lease is live while its expiry is later than now.
-- ARGV: now in µs ("" to read Redis's TIME), lease id, limit, TTL in µs,
--       TTL slack in ms.
-- Reply: {1, leases in flight, 0} admitted; {0, leases in flight, µs until
--        the earliest lease expires} refused; {-1, 0, 0} when KEYS[1] holds
--        something else (corrupt state).
--
-- Expired leases are dropped first, in the same step, so that the slots of
-- an instance that died come back by themselves. The key lives as long as
-- its latest lease (plus the slack), so it expires with its last lease.
--
--   redis-cli --eval redisstore/lua/concurrency-acquire.lua k , "" 0123abcd 10 10000000 0
local key = KEYS[1]
local now = ARGV[1]
if now == '' then
  local t = redis.call('TIME')
  now = t[1] * 1000000 + t[2]
else
  now = tonumber(now)
end
local limit, ttl, slack = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local dropped = redis.pcall('ZREMRANGEBYSCORE', key, '-inf', string.format('%.0f', now))
if type(dropped) == 'table' and dropped.err then
  return {-1, 0, 0}
end
local n = redis.call('ZCARD', key)
if n >= limit then
  local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  return {0, n, tonumber(first[2]) - now}
end
if redis.call('ZADD', key, 'NX', string.format('%.0f', now + ttl), ARGV[2]) == 0 then
  return redis.error_reply('lease ' .. ARGV[2] .. ' is already held')
end
local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
redis.call('PEXPIRE', key, math.ceil((tonumber(last[2]) - now) / 1000) + slack)
return {1, n + 1, 0}

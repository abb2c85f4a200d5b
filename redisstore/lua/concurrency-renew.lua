-- limitkit redisstore: renew a concurrency lease (core.ConcurrencyStore).
-- Standalone: redisstore/concurrency.go runs this file as it is.
--
-- KEYS[1]: the key's leases (see concurrency-acquire.lua).
-- ARGV: now in µs ("" to read Redis's TIME), lease id, TTL in µs, TTL slack
--       in ms.
-- Reply: 1 renewed until now + TTL; 0 the lease is not live (unknown,
--        expired or released: never brought back); -1 corrupt state.
--
--   redis-cli --eval redisstore/lua/concurrency-renew.lua k , "" 0123abcd 10000000 0
local key = KEYS[1]
local now = ARGV[1]
if now == '' then
  local t = redis.call('TIME')
  now = t[1] * 1000000 + t[2]
else
  now = tonumber(now)
end
local ttl, slack = tonumber(ARGV[3]), tonumber(ARGV[4])
local dropped = redis.pcall('ZREMRANGEBYSCORE', key, '-inf', string.format('%.0f', now))
if type(dropped) == 'table' and dropped.err then
  return -1
end
if not redis.call('ZSCORE', key, ARGV[2]) then
  return 0
end
redis.call('ZADD', key, 'XX', string.format('%.0f', now + ttl), ARGV[2])
local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
redis.call('PEXPIRE', key, math.ceil((tonumber(last[2]) - now) / 1000) + slack)
return 1

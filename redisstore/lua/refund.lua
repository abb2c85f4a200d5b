-- limitkit redisstore: a refund of part of a charge that a decision made,
-- core's cell.refund. Composed by redisstore/scripts.go from
-- redisstore/lua/ (refund.lua, prelude.lua and the algorithm's file);
-- redisstore/testdata/ holds every composed script.
--
-- KEYS: one key per limit, in rule order.
-- ARGV: now in µs ("" to read Redis's TIME), the time of the charge in µs
--       (as the decision's reply gave it), the amount to give back, then
--       per limit: count, window in µs, burst.
-- Reply: {1, 0}, or {-1, index of the first key whose state is corrupt}:
--        such a key is left alone, the others are refunded.
--
-- A refund only lowers a state, so each key keeps its TTL (keep, and list
-- edits, which keep it): the state still expires no later than it would
-- have. keep reads the TTL rather than SET's KEEPTTL, which Redis 5 lacks.
--
-- For example, give back 2 of a charge made at 1700000000000000 µs against
-- 5 per minute with a burst of 5, at Redis's time:
--
--   redis-cli --eval redisstore/testdata/token-bucket.refund.lua key , "" 1700000000000000 2 5 60000000 5
--{{prelude}}
local now = ARGV[1]
if now == '' then
  local secUsec = redis.call('TIME')
  now = secUsec[1] * 1000000 + secUsec[2]
else
  now = tonumber(now)
end
local at, amount = tonumber(ARGV[2]), tonumber(ARGV[3])
local function keep(k, v)
  local ttl = redis.call('PTTL', k)
  if ttl > 0 then redis.call('SET', k, v, 'PX', ttl) else redis.call('SET', k, v) end
end
local bad = false
for i = 1, (#ARGV - 3) / 3 do
  local o = (i - 1) * 3
  local count, window, burst = tonumber(ARGV[o + 4]), tonumber(ARGV[o + 5]), tonumber(ARGV[o + 6])
  --{{refund}}
end
if bad then return {-1, bad - 1} end
return {1, 0}

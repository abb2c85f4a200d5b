-- limitkit redisstore: one decision. Composed by redisstore/scripts.go from
-- redisstore/lua/ (one.lua, prelude.lua, decide.lua and the algorithm's
-- file); redisstore/testdata/ holds every composed script.
--
-- KEYS: one key per limit, in rule order.
-- ARGV: now in µs ("" to read Redis's TIME), cost, TTL slack in ms, mode
--       (0 decides and charges, 1 peeks: decides, charges nothing), then
--       per limit: count, window in µs, burst.
-- Reply: {allowed 0|1, deciding limit (0-based), remaining, reset-after µs,
--         retry-after µs, delay µs, never 0|1, the time decided at in µs},
--         or {-1, index of the key whose state is corrupt, 0, 0, 0, 0, 0, 0}.
--
-- For example, cost 1 against 5 per minute with a burst of 5, at Redis's
-- time and without slack:
--
--   redis-cli --eval redisstore/testdata/token-bucket.lua key , "" 1 0 0 5 60000000 5
--{{prelude}}
local kb, ab, n = 0, 0, (#ARGV - 4) / 3
--{{decide}}
return {allOK and 1 or 0, bIdx - 1, bRem, bReset, bRetry, delay, bNever and 1 or 0, now}

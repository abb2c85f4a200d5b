-- limitkit redisstore: one decision. Composed by redisstore/scripts.go from
-- redisstore/lua/ (one.lua, prelude.lua, decide.lua and the algorithm's
-- file); redisstore/testdata/ holds every composed script.
--
-- KEYS: one key per limit, in rule order.
-- ARGV: one string of little-endian doubles (struct.pack's '<d'): now in
--       µs (NaN to read Redis's TIME), cost, TTL slack in ms, mode (0
--       decides and charges, 1 peeks: decides, charges nothing), then per
--       limit: count, window in µs, burst; then, for each calendar limit,
--       the boundaries its window points at (see fixed-window.lua). One
--       argument costs Redis far less than a decimal one per number.
-- Reply: five little-endian doubles, packed as the arguments are: verdict,
--         remaining, reset-after µs, wait µs, the time decided at in µs.
--         The verdict is allowed (1) + never (2) + 4 × the deciding limit
--         (0-based), and the wait is the delay if allowed, else the
--         retry-after; or -1, index of the key whose state is corrupt, 0, 0,
--         0, or -2, index of the calendar limit, 0, 0, 0 when Redis's clock
--         is a window or more from the instance's. A string, where a table
--         of five integers costs Redis 4,000 instructions more to send.
--
-- For example, cost 1 against 5 per minute with a burst of 5, at Redis's
-- time and without slack. redis-cli cannot send the packed bytes as an
-- argument, so a line put before the script packs them (0/0 is NaN), on
-- the script's first line, which keeps its line numbers; od reads the
-- reply:
--
--   redis-cli eval "$(printf "local ARGV = {struct.pack('<ddddddd', 0/0, 1, 0, 0, 5, 60000000, 5)} "; cat redisstore/testdata/token-bucket.lua)" 1 key | head -c 40 | od -A n -t f8 -w8
--{{prelude}}
local A, kb, ab, n = ARGV[1], 0, 1, #KEYS
--{{decide}}
local verdict = 4 * (bIdx - 1)
if allOK then verdict, bRetry = verdict + 1, delay elseif bNever then verdict = verdict + 2 end
return sp(R, verdict, bRem, bReset, bRetry, now)

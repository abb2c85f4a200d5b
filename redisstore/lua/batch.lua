-- limitkit redisstore: a batch of decisions of one algorithm, run one after
-- another, each exactly as alone. Composed by redisstore/scripts.go from
-- redisstore/lua/ (batch.lua, prelude.lua, decide.lua and the algorithm's
-- file); redisstore/testdata/ holds every composed script.
--
-- KEYS: every decision's keys, one per limit, one decision after another.
-- ARGV: one string of little-endian doubles: for each decision, its number
--       of limits n, then its numbers as for one decision (now, cost,
--       slack, mode, then count, window and burst per limit: see
--       lua/one.lua).
-- Reply: every decision's reply (five doubles, as for one decision), one
--        after another, in one string.
--
-- For example, two decisions of cost 1 against 5 per minute with a burst
-- of 5 (see lua/one.lua):
--
--   redis-cli eval "$(printf "local d = struct.pack('<dddddddd', 1, 0/0, 1, 0, 0, 5, 60000000, 5) local ARGV = {d .. d} "; cat redisstore/testdata/token-bucket.batch.lua)" 2 a b | head -c 80 | od -A n -t f8 -w8
--{{prelude}}
local A, out = ARGV[1], {}
-- decide appends its packed reply to out and returns nothing; only corrupt
-- state returns a reply of its own.
local function decide(kb, ab, n)
--{{decide}}
local verdict = 4 * (bIdx - 1)
if allOK then verdict, bRetry = verdict + 1, delay elseif bNever then verdict = verdict + 2 end
out[#out + 1] = sp(R, verdict, bRem, bReset, bRetry, now)
end
local kb, ab, m = 0, 1, #A
while ab < m do
  local n = su('<d', A, ab)
  local r = decide(kb, ab + 8, n)
  if r then out[#out + 1] = r end
  kb = kb + n
  ab = ab + 40 + 24 * n
end
return table.concat(out)

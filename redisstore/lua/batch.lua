-- limitkit redisstore: a batch of decisions of one algorithm, run one after
-- another, each exactly as alone. Composed by redisstore/scripts.go from
-- redisstore/lua/ (batch.lua, prelude.lua, decide.lua and the algorithm's
-- file); redisstore/testdata/ holds every composed script.
--
-- KEYS: every decision's keys, one per limit, one decision after another.
-- ARGV: for each decision, its number of limits n, then its arguments as
--       for one decision (now, cost, slack, mode, then count, window and
--       burst per limit).
-- Reply: every decision's reply (five integers, as for one decision), one
--        after another.
--
-- For example, two decisions of cost 1 against 5 per minute with a burst
-- of 5:
--
--   redis-cli --eval redisstore/testdata/token-bucket.batch.lua a b , 1 "" 1 0 0 5 60000000 5 1 "" 1 0 0 5 60000000 5
--{{prelude}}
local out = {}
-- The first limit's count, window and burst as the last decision sent them
-- and as numbers: see limitargs below.
local PC, PW, PCn, PWn, PB, PBn
-- decide appends its reply to out, which saves a table per decision, and
-- returns nothing; only corrupt state returns a reply of its own.
local function decide(kb, ab, n)
--{{decide}}
local verdict = 4 * (bIdx - 1)
if allOK then verdict, bRetry = verdict + 1, delay elseif bNever then verdict = verdict + 2 end
local o = #out
out[o + 1], out[o + 2], out[o + 3], out[o + 4], out[o + 5] = verdict, bRem, bReset, bRetry, now
end
local kb, ab, m = 0, 0, #ARGV
while ab < m do
  local n = ARGV[ab + 1]
  if n == '1' then n = 1 else n = tonumber(n) end -- a strtod spared
  local r = decide(kb, ab + 1, n)
  if r then
    local o = #out
    for j = 1, 5 do out[o + j] = r[j] end
  end
  kb = kb + n
  ab = ab + 5 + 3 * n
end
return out
--{{define limitargs}}
  -- The decisions of a batch mostly share a rule, and a string compares by
  -- its interned pointer for a few instructions where turning it into a
  -- number costs Redis about 900, so the first limit's numbers are kept
  -- with the strings they came from (in PC, PW, PCn, PWn) for the next
  -- decision. (A single decision has nothing to share, and the test would
  -- cost it 400 instructions.)
  local count, window, burst = ARGV[o + 5], ARGV[o + 6], ARGV[o + 7]
  if i ~= 1 then count, window = count + 0, window + 0
  elseif count == PC and window == PW then count, window = PCn, PWn
  else
    PC, PW = count, window
    count, window = count + 0, window + 0
    PCn, PWn = count, window
  end
--{{define burstarg}}
  if i ~= 1 then burst = burst + 0
  elseif burst == PB then burst = PBn
  else PB, burst = burst, burst + 0; PBn = burst end

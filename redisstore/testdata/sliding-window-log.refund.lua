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
-- The script-wide part of every script: the algorithm's name, shorthands,
-- and the state each limit's check keeps for its commit.
local ALGORITHM = 'sliding-window-log'
local fmt, floor, mmax, su, sp = string.format, math.floor, math.max, struct.unpack, struct.pack
-- R packs a decision's reply: five doubles, a string Redis sends as it is,
-- where a table of five integers costs it 4,000 instructions more to read
-- and convert.
local R = '<ddddd'
-- windowStart: a decision's window starts at now - now % window, as in
-- core's windowStart, with an operator where math.fmod was a call. Lua's %
-- floors where Go's truncates, which differs only before 1970; there both
-- give a start below any state's (a state's window starts at 0 or later),
-- so both stores keep the state's window alike. A refund compares the start
-- with the state's, and truncates as core does (math.fmod); see
-- TestWindows_startAsCoreBefore1970.
-- D1, D2 and D3 format one, two and three integers: %d, much cheaper than
-- %.0f, is exact when Lua formats it from a 64-bit C long, as any 64-bit
-- build of Redis does; a 32-bit build falls back to %.0f. struct.size tells
-- the width of a long for 1,600 fewer instructions than formatting a test
-- number, on every run of every script.
local D1, D2, D3 = '%d', '%d,%d', '%d,%d,%d'
if struct.size('l') < 8 then D1, D2, D3 = '%.0f', '%.0f,%.0f', '%.0f,%.0f,%.0f' end
-- A check keeps up to three values of limit i for its commit: in A1, B1 and
-- C1 for the first limit, in SA[i], SB[i] and SC[i], made only when a rule
-- has more, for the others. Tables cost Redis a fraction of a microsecond
-- each to make and collect, and most rules have one limit.
local A1, B1, C1, SA, SB, SC
-- W1 is the first limit's window, which its commit reads again.
local W1
-- nowCache is Redis's TIME in µs, read at most once per script run.
local nowCache
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
  -- The charge's own entry, the first at or after its time, while the
  -- charge is in the window: its total and every later one shift down by
  -- what is given back, at most the entry's own cost; an entry left
  -- costing nothing leaves the log. The tail from the entry on is read,
  -- cut and pushed back rewritten.
  local lk = KEYS[i]
  local len = redis.pcall('LLEN', lk)
  if type(len) ~= 'number' or len % 2 ~= 1 and len > 0 then
    bad = bad or i
  elseif len > 0 and at > now - window then
    local pairs = (len - 1) / 2
    local newest = tonumber(redis.call('LINDEX', lk, -2))
    if not newest then
      bad = bad or i
    elseif newest >= at then
      -- pair lo is before the charge (0: none), pair hi at or after it.
      local lo, hi = 0, pairs
      while hi - lo > 1 do
        local mid = floor((lo + hi) / 2)
        local t = tonumber(redis.call('LINDEX', lk, 2 * mid - 1))
        if not t then bad = bad or i; break end
        if t >= at then hi = mid else lo = mid end
      end
      -- From the total before pair hi (the base, for the first) to the end.
      local xs = redis.call('LRANGE', lk, 2 * hi - 2, -1)
      local ys, ok = {}, true
      for j = 1, #xs do
        ys[j] = tonumber(xs[j])
        if not ys[j] then ok = false end
      end
      if not ok or bad == i then
        bad = bad or i
      else
        local prev = ys[1]
        local r = math.min(amount, ys[3] - prev)
        local out = {}
        for j = 2, #ys, 2 do
          local total = ys[j + 1] - r
          if j > 2 or total > prev then
            out[#out + 1], out[#out + 2] = xs[j], fmt(D1, total)
          end
        end
        if #out == 0 and hi == 1 then
          redis.call('DEL', lk) -- only the base would be left
        else
          redis.call('LTRIM', lk, 0, 2 * hi - 2)
          for j = 1, #out, 1000 do redis.call('RPUSH', lk, unpack(out, j, math.min(j + 999, #out))) end
        end
      end
    end
  end
end
if bad then return {-1, bad - 1} end
return {1, 0}

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
local A, kb, ab, n = ARGV[1], 0, 1, #KEYS
-- One decision, core's decide: check every limit, let the most telling
-- verdict speak (core's outranks), and charge all limits or none. Its keys
-- follow KEYS[kb] and its numbers start at byte ab of A, the packed
-- argument (see lua/one.lua); n is its number of limits. It leaves the
-- verdict in allOK, delay and the b* locals. The first limit's numbers
-- come with the decision's own, in one call.
local now, cost, slack, mode, count1, window1, burst1 = su('<ddddddd', A, ab)
if now ~= now then -- NaN: Redis's TIME
  if not nowCache then
    local secUsec = redis.call('TIME')
    nowCache = secUsec[1] * 1000000 + secUsec[2]
  end
  now = nowCache
end
-- mode 1 is a peek: the decision a charge would get, charging nothing.
local peek = mode == 1
local allOK, delay = true, 0
local bOk, bNever, bRem, bReset, bRetry, bIdx = true, false, 0, 0, 0, 1
-- Check each limit into ok, never, rem, reset, retry and dly. State this
-- store did not write ends the decision with the reply -1, index of the
-- key among the decision's keys, 0, 0, 0: a reply, not an error, so that a
-- batch still answers its other decisions.
for i = 1, n do
  -- Limit i's count, window in µs and burst (which only the buckets read).
  local count, window, burst = count1, window1, burst1
  if i > 1 then count, window, burst = su('<ddd', A, ab + 8 + 24 * i) end
  if i == 1 then W1 = window end
  local ok, never, rem, reset, retry, dly = false, false, 0, 0, 0, 0
  local lk = KEYS[kb + i]
  local base, newest, total, sum, pairs = 0, false, 0, 0, false
  local hd = redis.pcall('LRANGE', lk, 0, 1)
  if hd.err then return sp(R, -1, i - 1, 0, 0, 0) end
  if #hd > 0 then
    base = tonumber(hd[1])
    local first = tonumber(hd[2])
    if not (base and first) then return sp(R, -1, i - 1, 0, 0, 0) end
    local tl = redis.call('LRANGE', lk, -2, -1)
    newest, total = tonumber(tl[1]), tonumber(tl[2])
    if not (newest and total) then return sp(R, -1, i - 1, 0, 0, 0) end
    local cutoff = now - window
    if newest <= cutoff then
      -- Everything left the window.
      redis.call('DEL', lk)
      base, newest, total = 0, false, 0
    elseif first <= cutoff then
      -- Find the first request still in: pair lo has left, pair hi has not.
      local len = redis.call('LLEN', lk)
      if len % 2 ~= 1 then return sp(R, -1, i - 1, 0, 0, 0) end
      pairs = (len - 1) / 2
      local lo, hi = 1, pairs
      while hi - lo > 1 do
        local mid = floor((lo + hi) / 2)
        local at = tonumber(redis.call('LINDEX', lk, 2 * mid - 1))
        if not at then return sp(R, -1, i - 1, 0, 0, 0) end
        if at <= cutoff then lo = mid else hi = mid end
      end
      redis.call('LTRIM', lk, 2 * lo, -1)
      base = tonumber(redis.call('LINDEX', lk, 0))
      if not base then return sp(R, -1, i - 1, 0, 0, 0) end
      pairs = pairs - lo
    end
    sum = total - base
    if newest then reset = newest + window - now end
  end
  if i == 1 then A1, B1, C1 = newest, total, base
  else
    if not SA then SA, SB, SC = {}, {}, {} end
    SA[i], SB[i], SC[i] = newest, total, base
  end
  if cost <= count and sum + cost <= count then
    ok, rem, reset = true, count - sum - cost, window
  else
    rem = mmax(count - sum, 0)
    if cost > count then
      never = true
    else
      -- core's freedAt: the first request whose expiry frees need, found
      -- by its running total; the newest one frees the whole sum.
      local need = sum + cost - count
      if not pairs then pairs = (redis.call('LLEN', lk) - 1) / 2 end
      local lo, hi = 0, pairs
      while hi - lo > 1 do
        local mid = floor((lo + hi) / 2)
        local c = tonumber(redis.call('LINDEX', lk, 2 * mid))
        if not c then return sp(R, -1, i - 1, 0, 0, 0) end
        if c - base >= need then hi = mid else lo = mid end
      end
      local at = tonumber(redis.call('LINDEX', lk, 2 * hi - 1))
      if not at then return sp(R, -1, i - 1, 0, 0, 0) end
      retry = at + window - now
    end
  end
  -- core's outranks.
  allOK = allOK and ok
  if dly > delay then delay = dly end
  local better
  if i == 1 then better = true
  elseif ok ~= bOk then better = not ok
  elseif ok then better = rem < bRem
  elseif never ~= bNever then better = never
  else better = retry > bRetry end
  if better then bOk, bNever, bRem, bReset, bRetry, bIdx = ok, never, rem, reset, retry, i end
end
-- Commit (or settle) each limit. A key's TTL, ttlMs, is how long it must
-- live for its state to matter, plus the slack a driven clock needs; zero
-- when its state is as good as none. A peek commits nothing.
for i = 1, peek and 0 or n do
  local window = W1
  if i > 1 then window = su('<d', A, ab + 16 + 24 * i) end
  local lk = KEYS[kb + i]
  local newest, total, base
  if i == 1 then newest, total, base = A1, B1, C1
  else newest, total, base = SA[i], SB[i], SC[i] end
  -- A request of cost 0 only looks: logging it would let the log outgrow
  -- the count.
  if allOK and cost > 0 then
    if not newest then
      redis.call('RPUSH', lk, '0', fmt(D1, now), fmt(D1, cost))
    elseif newest >= now then
      redis.call('LSET', lk, -1, fmt(D1, total + cost))
    else
      redis.call('RPUSH', lk, fmt(D1, now), fmt(D1, total + cost))
    end
    if base > 1125899906842624 then
      local xs = redis.call('LRANGE', lk, 0, -1)
      redis.call('DEL', lk)
      xs[1] = '0'
      for j = 3, #xs, 2 do xs[j] = fmt(D1, tonumber(xs[j]) - base) end
      for j = 1, #xs, 1000 do redis.call('RPUSH', lk, unpack(xs, j, math.min(j + 999, #xs))) end
    end
    -- The newest request is now at now, or later if the clock went back;
    -- the key outlives it by the window.
    local ttlMs, top = slack, now
    if newest and newest > now then top = newest end
    if top + window > now then
      local ms = (top + window - now) / 1000
      ttlMs = ttlMs + ms + (-ms) % 1 -- math.ceil(ms), without three calls
    end
    redis.call('PEXPIRE', lk, fmt(D1, ttlMs))
  end
end
if not allOK then delay = 0 end
local verdict = 4 * (bIdx - 1)
if allOK then verdict, bRetry = verdict + 1, delay elseif bNever then verdict = verdict + 2 end
return sp(R, verdict, bRem, bReset, bRetry, now)

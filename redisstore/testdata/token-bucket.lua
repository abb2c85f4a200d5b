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
local ALGORITHM = 'token-bucket'
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
local LEAKY = ALGORITHM == 'leaky-bucket'
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
  local step = (window + count - 1) / count
  step = step - step % 1
  if step * count < window then step = step + 1 end
  if (step - 1) * count >= window then step = step - 1 end
  local depth = burst * step
  local a, full = 0, 0
  local v = redis.pcall('GET', KEYS[kb + i])
  if v then
    if type(v) ~= 'string' then return sp(R, -1, i - 1, 0, 0, 0) end
    local p = string.find(v, ',', 1, true)
    if p then a, full = tonumber(string.sub(v, 1, p - 1)), tonumber(string.sub(v, p + 1)) else a = tonumber(v) end
    if not a or not full then return sp(R, -1, i - 1, 0, 0, 0) end
  end
  if i == 1 then A1, B1, C1 = a, step, full
  else
    if not SA then SA, SB, SC = {}, {}, {} end
    SA[i], SB[i], SC[i] = a, step, full
  end
  local tat = now
  if a > now then tat = a end
  local nxt = tat + cost * step
  if nxt - now <= depth then
    ok = true
    rem = (depth - (nxt - now)) / step
    rem = rem - rem % 1
    reset = nxt - now
    if LEAKY then dly = tat - now end
  else
    rem = (depth - (tat - now)) / step
    rem = rem - rem % 1
    if rem < 0 then rem = 0 end
    reset = tat - now
    if cost > burst then never = true else retry = nxt - depth - now end
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
  if allOK then
    local a, step, full
    if i == 1 then a, step, full = A1, B1, C1
    else a, step, full = SA[i], SB[i], SC[i] end
    if a <= now then full = now end -- what was charged before is all back
    if a < now then a = now end
    a = a + cost * step
    -- The key outlives the theoretical arrival time: ttlMs rounds its
    -- distance up to whole ms (x + (-x) % 1 is math.ceil(x), without a call).
    local ttlMs = slack
    if a > now then
      local ms = (a - now) / 1000
      ttlMs = ttlMs + ms + (-ms) % 1
    end
    if ttlMs > 0 then
      redis.call('SET', KEYS[kb + i], fmt(D2, a, full), 'PX', fmt(D1, ttlMs)) -- a string: Redis would format a number with %.17g, which costs more
    else
      redis.call('DEL', KEYS[kb + i])
    end
  end
end
if not allOK then delay = 0 end
local verdict = 4 * (bIdx - 1)
if allOK then verdict, bRetry = verdict + 1, delay elseif bNever then verdict = verdict + 2 end
return sp(R, verdict, bRem, bReset, bRetry, now)

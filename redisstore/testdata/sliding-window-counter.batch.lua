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
-- The script-wide part of every script: the algorithm's name, shorthands,
-- and the state each limit's check keeps for its commit.
local ALGORITHM = 'sliding-window-counter'
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
-- wait is core's counterWait, made by the first refusal that needs it: a
-- function made on every run costs the script 1,000 instructions.
local wait
local A, out = ARGV[1], {}
-- decide appends its packed reply to out and returns nothing; only corrupt
-- state returns a reply of its own.
local function decide(kb, ab, n)
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
  local a, b, c = 0, 0, 0
  local v = redis.pcall('GET', KEYS[kb + i])
  if v then
    if type(v) ~= 'string' then return sp(R, -1, i - 1, 0, 0, 0) end
    local p = string.find(v, ',', 1, true)
    local q = p and string.find(v, ',', p + 1, true)
    if q then a, b, c = tonumber(string.sub(v, 1, p - 1)), tonumber(string.sub(v, p + 1, q - 1)), tonumber(string.sub(v, q + 1)) else a = nil end
    if not a or not b or not c then return sp(R, -1, i - 1, 0, 0, 0) end
  end
  if i == 1 then A1, B1, C1 = a, b, c
  else
    if not SA then SA, SB, SC = {}, {}, {} end
    SA[i], SB[i], SC[i] = a, b, c
  end
  local ws, curr, prev = now - now % window, 0, 0 -- see windowStart (lua/prelude.lua)
  if ws <= a then
    ws, curr, prev = a, b, c
  elseif ws == a + window then
    prev = b
  end
  local elapsed = now - ws -- clamped to [0, window], without two calls
  if elapsed < 0 then elapsed = 0 elseif elapsed > window then elapsed = window end
  local est = prev * (window - elapsed) / window + curr
  if curr > 0 then
    reset = ws + 2 * window - now
  elseif prev > 0 then
    reset = ws + window - now
  end
  if cost <= count and est + cost <= count then
    ok = true
    rem = count - est - cost
    rem = rem - rem % 1
    reset = ws + 2 * window - now
  else
    rem = count - est
    rem = rem - rem % 1
    if rem < 0 then rem = 0 end
    if not wait and cost <= count then
      wait = function(prev, curr, window, count, cost)
        if prev == 0 or prev * (window - 0) / window + curr + cost <= count then return 0 end
        -- The estimate falls as elapsed grows, and fits at the window's
        -- end: binary-search the smallest elapsed where it fits, as core
        -- does.
        local lo, hi = 0, window
        while hi - lo > 1 do
          local mid = floor((lo + hi) / 2)
          if prev * (window - mid) / window + curr + cost <= count then hi = mid else lo = mid end
        end
        return hi
      end
    end
    if cost > count then
      never = true
    elseif curr + cost <= count then
      retry = ws + wait(prev, curr, window, count, cost) - now
    else
      retry = ws + window + wait(curr, 0, window, count, cost) - now
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
  if allOK then
    local a, b, c
    if i == 1 then a, b, c = A1, B1, C1
    else a, b, c = SA[i], SB[i], SC[i] end
    local ws = now - now % window
    if ws <= a then
    elseif ws == a + window then
      a, b, c = ws, 0, b
    else
      a, b, c = ws, 0, 0
    end
    b = b + cost
    -- The key outlives the next window, which still counts this one (set
    -- again at every charge, as the fixed window's is).
    local ttlMs = slack
    if a + 2 * window > now then
      local ms = (a + 2 * window - now) / 1000
      ttlMs = ttlMs + ms + (-ms) % 1 -- math.ceil(ms), without a call
    end
    if ttlMs > 0 then
      redis.call('SET', KEYS[kb + i], fmt(D3, a, b, c), 'PX', fmt(D1, ttlMs)) -- a string: Redis would format a number with %.17g, which costs more
    else
      redis.call('DEL', KEYS[kb + i])
    end
  end
end
if not allOK then delay = 0 end
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

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
  --{{check}}
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
  --{{commit}}
end
if not allOK then delay = 0 end

-- One decision, core's decide: check every limit, let the most telling
-- verdict speak (core's outranks), and charge all limits or none. Its keys
-- follow KEYS[kb] and its arguments ARGV[ab]; n is its number of limits.
-- It leaves the verdict in allOK, delay and the b* locals.
local now = ARGV[ab + 1]
if now == '' then
  if not nowCache then
    local secUsec = redis.call('TIME')
    nowCache = secUsec[1] * 1000000 + secUsec[2]
  end
  now = nowCache
else
  now = now + 0
end
-- Each number argument costs a strtod; the usual cost and slack are
-- recognised by their (interned) strings instead.
local cost, slack = ARGV[ab + 2], ARGV[ab + 3]
if cost == '1' then cost = 1 else cost = cost + 0 end
if slack == '0' then slack = 0 else slack = slack + 0 end
-- mode 1 is a peek: the decision a charge would get, charging nothing.
local peek = ARGV[ab + 4] == '1'
local allOK, delay = true, 0
local bOk, bNever, bRem, bReset, bRetry, bIdx = true, false, 0, 0, 0, 1
-- Check each limit into ok, never, rem, reset, retry and dly. State this
-- store did not write ends the decision with {-1, index of the key among
-- the decision's keys, 0, 0, 0}: a reply, not an error, so that a
-- batch still answers its other decisions.
for i = 1, n do
  local o = ab + (i - 1) * 3
  -- count and window as numbers, burst as a string (only the buckets read
  -- it): as lua/one.lua or lua/batch.lua reads them.
  --{{limitargs}}
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
  if i > 1 then window = ARGV[ab + (i - 1) * 3 + 6] + 0 end
  --{{commit}}
end
if not allOK then delay = 0 end

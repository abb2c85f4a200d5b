-- The fixed window. Its state is core's cell "a,b": window start and count.
-- A calendar limit (core/calendar.go) keeps "a,b" too, with a the window's
-- end, and comes with a negative window, -p: the decision's numbers p to
-- p + 3 (from 0, 8 bytes each from byte ab of A) are the four boundaries
-- of three windows, the one that holds the instance's time and its
-- neighbours, so that Redis's time, not the instance's, picks the window
-- (redisstore/calendar.go).
--{{define check}}
  local a, b = 0, 0
  local v = redis.pcall('GET', KEYS[kb + i])
  if v then
    if type(v) ~= 'string' then return sp(R, -1, i - 1, 0, 0, 0) end
    local p = string.find(v, ',', 1, true)
    if p then a, b = tonumber(string.sub(v, 1, p - 1)), tonumber(string.sub(v, p + 1)) else a = nil end
    if not a or not b then return sp(R, -1, i - 1, 0, 0, 0) end
  end
  if i == 1 then A1, B1 = a, b
  else
    if not SA then SA, SB, SC = {}, {}, {} end
    SA[i], SB[i] = a, b
  end
  local we, cnt = 0, b -- the end of the window now counts in, and its count
  if window > 0 then
    local ws = now - now % window -- see windowStart (lua/prelude.lua)
    if ws > a then cnt = 0 else ws = a end
    we = ws + window
  else
    local b0, b1, b2, b3 = su('<dddd', A, ab - 8 * window)
    -- Beyond the three windows Redis's clock is a window or more from the
    -- instance's: refuse rather than guess ({-2, i - 1, ...}).
    if now < b0 or now >= b3 then return sp(R, -2, i - 1, 0, 0, 0) end
    we = b1
    if now >= we then
      we = b2
      if now >= we then we = b3 end
    end
    if we > a then cnt = 0 else we = a end
    if i == 1 then C1 = we else SC[i] = we end
  end
  reset = we - now
  if cost <= count and cnt + cost <= count then
    ok, rem = true, count - cnt - cost
  else
    rem = count - cnt
    if rem < 0 then rem = 0 end
    if cost > count then never = true else retry = we - now end
  end
--{{define commit}}
  if allOK then
    local a, b
    if i == 1 then a, b = A1, B1
    else a, b = SA[i], SB[i] end
    local we -- the end of the window charged
    if window > 0 then
      local ws = now - now % window
      if ws > a then a, b = ws, 0 end
      we = a + window
    else
      if i == 1 then we = C1 else we = SC[i] end
      if we > a then a, b = we, 0 end
    end
    b = b + cost
    -- The key outlives the window. Its TTL is set again at every charge,
    -- though the window's first set it already (SET's KEEPTTL would spare
    -- 6,000 instructions): a TTL cut short, by a replica or a Cluster
    -- migration resolving it on a clock behind, is then repaired on the
    -- deciding master's clock by the next charge, rather than ending the
    -- window's state early.
    local ttlMs = slack
    if we > now then
      local ms = (we - now) / 1000
      ttlMs = ttlMs + ms + (-ms) % 1 -- math.ceil(ms), without a call
    end
    if ttlMs > 0 then
      redis.call('SET', KEYS[kb + i], fmt(D2, a, b), 'PX', fmt(D1, ttlMs)) -- a string: Redis would format a number with %.17g, which costs more
    else
      redis.call('DEL', KEYS[kb + i])
    end
  end
--{{define refund}}
  -- Only while the charge's window is the current one. A calendar limit's
  -- window comes as the end of the charge's window, negated, which its
  -- state holds in a.
  local v = redis.pcall('GET', KEYS[i])
  if v then
    local x, y = string.match(type(v) == 'string' and v or '', '^(%-?%d+),(%-?%d+)$')
    local a, b = tonumber(x), tonumber(y)
    if not b then
      bad = bad or i
    else
      -- a names the state's window: its start, or a calendar limit's end.
      local mine, we = false, -window
      if window > 0 then
        local ws = at - math.fmod(at, window) -- as core's, before 1970 too
        mine, we = a == ws, ws + window
      else
        mine = a == we
      end
      if mine and now < we and b > 0 then
        keep(KEYS[i], fmt(D2, a, b - math.min(amount, b)))
      end
    end
  end

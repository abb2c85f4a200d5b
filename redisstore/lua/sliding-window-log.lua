-- The sliding window log is core's eventLog, in one list: the total of the
-- costs that left the log (its base), then a time and a running total for
-- each admitted request, oldest first, with equal times merged:
-- base, t1, c1, t2, c2, ... The running totals make both of the log's
-- searches binary searches, for the first request still in the window and
-- for the one whose expiry frees enough, so that a decision reads a few
-- entries however long the log and whatever the cost; dropping the first k
-- requests is one LTRIM from the k-th total, which becomes the new base. The
-- check keeps for the commit the newest time and total (false when the log
-- is empty) and the base.
--
-- The commit charges an admission. Should the totals grow near where
-- doubles stop being exact, which takes 2^50 units of cost admitted under
-- one key without its log ever emptying, it rewrites them from zero once.
--{{define check}}
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
--{{define commit}}
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
--{{define refund}}
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

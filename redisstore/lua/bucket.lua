-- The token and leaky buckets, which are GCRA: the state is core's cell
-- "a,b": the theoretical arrival time, and when a charge last found the
-- bucket full, which refunds read (a bare "a" is read with b = 0). They differ only in that the leaky bucket delays an
-- admission until its turn. step and depth are core's shape: window/count
-- rounded up, corrected should the doubles' division land on the wrong
-- side, and burst·step, which core's validation keeps exact. The check
-- keeps each step for the commit.
--{{define helpers}}
local LEAKY = ALGORITHM == 'leaky-bucket'
--{{define check}}
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
--{{define commit}}
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
--{{define refund}}
  -- The TAT moves back by amount steps, never before now, unless the
  -- bucket has been full since the charge (core's cell.refund).
  local v = redis.pcall('GET', KEYS[i])
  if v then
    local a, full
    if type(v) == 'string' then
      local x, y = string.match(v, '^(%-?%d+),(%-?%d+)$')
      if y then a, full = tonumber(x), tonumber(y) else a, full = tonumber(v), 0 end
    end
    if not a then
      bad = bad or i
    elseif a > now and at >= full then
      local step = floor((window + count - 1) / count)
      if step * count < window then step = step + 1 end
      if (step - 1) * count >= window then step = step - 1 end
      keep(KEYS[i], fmt(D2, mmax(a - amount * step, now), full))
    end
  end

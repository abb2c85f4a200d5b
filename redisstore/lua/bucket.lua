-- The token and leaky buckets, which are GCRA: the state is the theoretical
-- arrival time alone. They differ only in that the leaky bucket delays an
-- admission until its turn. step and depth are core's shape: window/count
-- rounded up, corrected should the doubles' division land on the wrong
-- side, and burst·step, which core's validation keeps exact. The check
-- keeps each step for the commit.
--{{define helpers}}
local LEAKY = ALGORITHM == 'leaky-bucket'
--{{define check}}
  local step = floor((window + count - 1) / count)
  if step * count < window then step = step + 1 end
  if (step - 1) * count >= window then step = step - 1 end
  local depth = burst * step
  local a = 0
  local v = redis.pcall('GET', KEYS[kb + i])
  if v then
    a = tonumber(v)
    if not a then return {-1, i - 1, 0, 0, 0, 0, 0, 0} end
  end
  if i == 1 then A1, B1 = a, step
  else
    if not SA then SA, SB, SC = {}, {}, {} end
    SA[i], SB[i] = a, step
  end
  local tat = mmax(a, now)
  local nxt = tat + cost * step
  if nxt - now <= depth then
    ok = true
    rem = floor((depth - (nxt - now)) / step)
    reset = nxt - now
    if LEAKY then dly = tat - now end
  else
    rem = mmax(floor((depth - (tat - now)) / step), 0)
    reset = tat - now
    if cost > burst then never = true else retry = nxt - depth - now end
  end
--{{define commit}}
  if allOK then
    local a, step
    if i == 1 then a, step = A1, B1
    else a, step = SA[i], SB[i] end
    a = mmax(a, now) + cost * step
    -- The key outlives the theoretical arrival time.
    local ttlMs = slack
    if a > now then ttlMs = ttlMs + math.ceil((a - now) / 1000) end
    if ttlMs > 0 then
      redis.call('SET', KEYS[kb + i], fmt(D1, a), 'PX', ttlMs)
    else
      redis.call('DEL', KEYS[kb + i])
    end
  end
--{{define refund}}
  -- The TAT moves back by amount steps, never before now, and by no more
  -- than is left of the charge, which is replenished by at + depth at the
  -- latest (it was admitted with the TAT at most depth after at).
  local v = redis.pcall('GET', KEYS[i])
  if v then
    local a = type(v) == 'string' and tonumber(v)
    if not a then
      bad = bad or i
    elseif a > now then
      local step = floor((window + count - 1) / count)
      if step * count < window then step = step + 1 end
      if (step - 1) * count >= window then step = step - 1 end
      local back = math.min(amount * step, at + burst * step - now)
      if back > 0 then keep(KEYS[i], fmt(D1, mmax(a - back, now))) end
    end
  end

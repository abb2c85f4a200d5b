-- The fixed window. Its state is core's cell "a,b": window start and count.
--{{define check}}
  local a, b = 0, 0
  local v = redis.pcall('GET', KEYS[kb + i])
  if v then
    if type(v) ~= 'string' then return {-1, i - 1, 0, 0, 0, 0, 0, 0} end
    local x, y = string.match(v, '^(%-?%d+),(%-?%d+)$')
    a, b = tonumber(x), tonumber(y)
    if not b then return {-1, i - 1, 0, 0, 0, 0, 0, 0} end
  end
  if i == 1 then A1, B1 = a, b
  else
    if not SA then SA, SB, SC = {}, {}, {} end
    SA[i], SB[i] = a, b
  end
  local ws, cnt = now - fmod(now, window), b
  if ws > a then cnt = 0 else ws = a end
  reset = ws + window - now
  if cost <= count and cnt + cost <= count then
    ok, rem = true, count - cnt - cost
  else
    rem = mmax(count - cnt, 0)
    if cost > count then never = true else retry = ws + window - now end
  end
--{{define commit}}
  if allOK then
    local a, b
    if i == 1 then a, b = A1, B1
    else a, b = SA[i], SB[i] end
    local ws = now - fmod(now, window)
    if ws > a then a, b = ws, 0 end
    b = b + cost
    -- The key outlives the window.
    local ttlMs = slack
    if a + window > now then ttlMs = ttlMs + math.ceil((a + window - now) / 1000) end
    if ttlMs > 0 then
      redis.call('SET', KEYS[kb + i], fmt(D2, a, b), 'PX', ttlMs)
    else
      redis.call('DEL', KEYS[kb + i])
    end
  end
--{{define refund}}
  -- Only while the charge's window is the current one.
  local v = redis.pcall('GET', KEYS[i])
  if v then
    local x, y = string.match(type(v) == 'string' and v or '', '^(%-?%d+),(%-?%d+)$')
    local a, b = tonumber(x), tonumber(y)
    if not b then
      bad = bad or i
    else
      local ws = at - fmod(at, window)
      if a == ws and now < ws + window and b > 0 then
        keep(KEYS[i], fmt(D2, a, b - math.min(amount, b)))
      end
    end
  end

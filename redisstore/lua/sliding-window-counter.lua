-- The sliding window counter. Its state is core's cell "a,b,c": window
-- start, current count, previous count. wait is core's counterWait; the
-- estimate keeps core's order of operations, so the doubles are the same.
--{{define helpers}}
-- wait is core's counterWait, made by the first refusal that needs it: a
-- function made on every run costs the script 1,000 instructions.
local wait
--{{define check}}
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
--{{define commit}}
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
--{{define refund}}
  -- The count of the charge's window, current or previous.
  local v = redis.pcall('GET', KEYS[i])
  if v then
    local x, y, z = string.match(type(v) == 'string' and v or '', '^(%-?%d+),(%-?%d+),(%-?%d+)$')
    local a, b, c = tonumber(x), tonumber(y), tonumber(z)
    if not c then
      bad = bad or i
    else
      local ws = at - math.fmod(at, window) -- as core's, before 1970 too
      if a == ws and b > 0 then
        keep(KEYS[i], fmt(D3, a, b - math.min(amount, b), c))
      elseif a == ws + window and c > 0 then
        keep(KEYS[i], fmt(D3, a, b, c - math.min(amount, c)))
      end
    end
  end

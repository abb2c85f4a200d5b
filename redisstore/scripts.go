package redisstore

import (
	"github.com/limitkit/limitkit/core"
	"github.com/redis/go-redis/v9"
)

// The scripts repeat core/decide.go step for step, in integer microseconds
// held in Lua's doubles (exact below 2^53, which core's validation keeps every
// quantity under), so that Redis and the memory store decide alike. Each
// script is a prelude, one algorithm's state and arithmetic, and the rule
// loop of core's decide: check every limit, let the most telling verdict
// speak (core's outranks), and charge all limits or none.
//
// KEYS: one key per limit, in rule order; two for the sliding window log
//       (the list of admitted (time, cost) pairs, then their running sum).
// ARGV: now in µs ("" to read Redis's TIME), cost, TTL slack in ms, then per
//       limit: count, window, step, depth, burst (core's shape).
// Reply: {allowed 0|1, deciding limit (0-based), remaining, reset-after µs,
//         retry-after µs, delay µs, never 0|1}.

const prelude = `
local now
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
else
  now = tonumber(ARGV[1])
end
local cost = tonumber(ARGV[2])
local slack = tonumber(ARGV[3])
local nlimits = (#ARGV - 3) / 5

local function num(s, key)
  local x = tonumber(s)
  if x == nil then error('limitkit: corrupt state under ' .. key .. ': ' .. tostring(s)) end
  return x
end

-- Go's now - now%w: math.fmod truncates like Go's %, also below zero.
local function wstart(t, w) return t - math.fmod(t, w) end

local function fmt(x) return string.format('%.0f', x) end

-- ttl is how long, in ms, a key must live to outlast exp (µs), plus the
-- slack a driven clock needs; zero when its state is as good as none.
local function ttl(exp)
  local t = 0
  if exp > now then t = math.ceil((exp - now) / 1000) end
  return t + slack
end

local function verdict() return {ok = false, never = false, remaining = 0, reset = 0, retry = 0, delay = 0} end
`

// The state of FixedWindow and SlidingWindowCounter is core's cell: "a,b" or
// "a,b,c" in one string key written with its TTL in one SET.
const fixedWindow = `
local function load(i)
  local key = KEYS[i]
  local v = redis.call('GET', key)
  if not v then return {a = 0, b = 0} end
  local a, b = string.match(v, '^(%-?%d+),(%-?%d+)$')
  return {a = num(a, key), b = num(b, key)}
end

local function check(c, s)
  local ws, n = wstart(now, s.window), c.b
  if ws > c.a then n = 0 else ws = c.a end
  local v = verdict()
  v.reset = ws + s.window - now
  if n + cost <= s.count then
    v.ok, v.remaining = true, s.count - n - cost
    return v
  end
  v.remaining = math.max(s.count - n, 0)
  if cost > s.count then v.never = true else v.retry = ws + s.window - now end
  return v
end

local function commit(c, s, i)
  local ws = wstart(now, s.window)
  if ws > c.a then c.a, c.b = ws, 0 end
  c.b = c.b + cost
  local t = ttl(c.a + s.window)
  if t > 0 then
    redis.call('SET', KEYS[i], fmt(c.a) .. ',' .. fmt(c.b), 'PX', t)
  else
    redis.call('DEL', KEYS[i])
  end
end

local function settle(c, s, i) end
`

const slidingWindowCounter = `
local function load(i)
  local key = KEYS[i]
  local v = redis.call('GET', key)
  if not v then return {a = 0, b = 0, c = 0} end
  local a, b, p = string.match(v, '^(%-?%d+),(%-?%d+),(%-?%d+)$')
  return {a = num(a, key), b = num(b, key), c = num(p, key)}
end

local function state(c, s)
  local ws = wstart(now, s.window)
  if ws <= c.a then return c.a, c.b, c.c end
  if ws == c.a + s.window then return ws, 0, c.b end
  return ws, 0, 0
end

-- The order of operations is core's estimate: the same doubles.
local function estimate(prev, curr, window, elapsed)
  return prev * (window - elapsed) / window + curr
end

local function fits(prev, curr, s, e)
  return estimate(prev, curr, s.window, e) + cost <= s.count
end

local function wait(prev, curr, s)
  if prev == 0 or fits(prev, curr, s, 0) then return 0 end
  local room = s.count - curr - cost
  local e = s.window - math.floor(room * s.window / prev)
  e = math.min(math.max(e, 0), s.window)
  while e < s.window and not fits(prev, curr, s, e) do e = e + 1 end
  while e > 0 and fits(prev, curr, s, e - 1) do e = e - 1 end
  return e
end

local function check(c, s)
  local ws, curr, prev = state(c, s)
  local elapsed = math.min(math.max(now - ws, 0), s.window)
  local est = estimate(prev, curr, s.window, elapsed)
  local v = verdict()
  if curr > 0 then
    v.reset = ws + 2 * s.window - now
  elseif prev > 0 then
    v.reset = ws + s.window - now
  end
  if est + cost <= s.count then
    v.ok = true
    v.remaining = math.floor(s.count - est - cost)
    v.reset = ws + 2 * s.window - now
    return v
  end
  v.remaining = math.max(math.floor(s.count - est), 0)
  if cost > s.count then
    v.never = true
    return v
  end
  if curr + cost <= s.count then
    v.retry = ws + wait(prev, curr, s) - now
  else
    v.retry = ws + s.window + wait(curr, 0, s) - now
  end
  return v
end

local function commit(c, s, i)
  local ws = wstart(now, s.window)
  if ws <= c.a then
  elseif ws == c.a + s.window then
    c.a, c.b, c.c = ws, 0, c.b
  else
    c.a, c.b, c.c = ws, 0, 0
  end
  c.b = c.b + cost
  local t = ttl(c.a + 2 * s.window)
  if t > 0 then
    redis.call('SET', KEYS[i], fmt(c.a) .. ',' .. fmt(c.b) .. ',' .. fmt(c.c), 'PX', t)
  else
    redis.call('DEL', KEYS[i])
  end
end

local function settle(c, s, i) end
`

// The buckets are GCRA: the state is the theoretical arrival time alone.
const bucket = `
local function load(i)
  local key = KEYS[i]
  local v = redis.call('GET', key)
  if not v then return {a = 0} end
  return {a = num(v, key)}
end

local function check(c, s)
  local tat = math.max(c.a, now)
  local nxt = tat + cost * s.step
  local v = verdict()
  if nxt - now <= s.depth then
    v.ok = true
    v.remaining = math.floor((s.depth - (nxt - now)) / s.step)
    v.reset = nxt - now
    if LEAKY then v.delay = tat - now end
    return v
  end
  v.remaining = math.max(math.floor((s.depth - (tat - now)) / s.step), 0)
  v.reset = tat - now
  if cost > s.burst then v.never = true else v.retry = nxt - s.depth - now end
  return v
end

local function commit(c, s, i)
  c.a = math.max(c.a, now) + cost * s.step
  local t = ttl(c.a)
  if t > 0 then
    redis.call('SET', KEYS[i], fmt(c.a), 'PX', t)
  else
    redis.call('DEL', KEYS[i])
  end
end

local function settle(c, s, i) end
`

// The sliding window log is core's eventLog: a list of time, cost, time,
// cost, ... oldest first, with equal times merged, and its sum in a second
// key. It holds at most Count pairs when every cost is at least one.
const slidingWindowLog = `
local chunk = 256 -- list elements read per LRANGE

local function load(i)
  local lk, sk = KEYS[2 * i - 1], KEYS[2 * i]
  local v = redis.call('GET', sk)
  local c = {lk = lk, sk = sk, sum = 0, trimmed = false}
  if v then c.sum = num(v, sk) end
  return c
end

local function newest(c)
  local v = redis.call('LINDEX', c.lk, -2)
  if not v then return 0 end
  return num(v, c.lk)
end

-- expire drops the pairs at or before cutoff from the head.
local function expire(c, cutoff)
  while true do
    local xs = redis.call('LRANGE', c.lk, 0, chunk - 1)
    if #xs % 2 ~= 0 then error('limitkit: corrupt state under ' .. c.lk .. ': odd length') end
    local drop, stop = 0, false
    for j = 1, #xs, 2 do
      if num(xs[j], c.lk) > cutoff then stop = true break end
      c.sum = c.sum - num(xs[j + 1], c.lk)
      drop = drop + 2
    end
    if drop > 0 then
      redis.call('LTRIM', c.lk, drop, -1)
      c.trimmed = true
    end
    if stop or #xs < chunk then return end
  end
end

-- freedAt is the time of the pair whose expiry frees at least need.
local function freedAt(c, need)
  local from = 0
  while true do
    local xs = redis.call('LRANGE', c.lk, from, from + chunk - 1)
    for j = 1, #xs, 2 do
      need = need - num(xs[j + 1], c.lk)
      if need <= 0 then return num(xs[j], c.lk) end
    end
    if #xs < chunk then return newest(c) end
    from = from + chunk
  end
end

local function check(c, s)
  expire(c, now - s.window)
  local v = verdict()
  if c.sum > 0 then v.reset = newest(c) + s.window - now end
  if c.sum + cost <= s.count then
    v.ok, v.remaining, v.reset = true, s.count - c.sum - cost, s.window
    return v
  end
  v.remaining = math.max(s.count - c.sum, 0)
  if cost > s.count then
    v.never = true
    return v
  end
  v.retry = freedAt(c, c.sum + cost - s.count) + s.window - now
  return v
end

-- settle stores what expire changed when the request is not charged.
local function settle(c, s, i)
  if not c.trimmed then return end
  if redis.call('EXISTS', c.lk) == 0 then
    redis.call('DEL', c.sk)
  else
    redis.call('SET', c.sk, fmt(c.sum), 'KEEPTTL')
  end
end

local function commit(c, s, i)
  local last = redis.call('LINDEX', c.lk, -2)
  if last and num(last, c.lk) == now then
    local lc = num(redis.call('LINDEX', c.lk, -1), c.lk)
    redis.call('LSET', c.lk, -1, fmt(lc + cost))
  else
    redis.call('RPUSH', c.lk, fmt(now), fmt(cost))
  end
  c.sum = c.sum + cost
  local t = ttl(newest(c) + s.window)
  if t > 0 then
    redis.call('PEXPIRE', c.lk, t)
    redis.call('SET', c.sk, fmt(c.sum), 'PX', t)
  else
    redis.call('DEL', c.lk, c.sk)
  end
end
`

// rule is core's decide and outranks.
const rule = `
local function outranks(v, b)
  if v.ok ~= b.ok then return not v.ok end
  if v.ok then return v.remaining < b.remaining end
  if v.never ~= b.never then return v.never end
  return v.retry > b.retry
end

local shapes, cells = {}, {}
local best, bestIdx, allOK, delay = nil, 1, true, 0
for i = 1, nlimits do
  local o = 3 + (i - 1) * 5
  local s = {count = tonumber(ARGV[o + 1]), window = tonumber(ARGV[o + 2]),
    step = tonumber(ARGV[o + 3]), depth = tonumber(ARGV[o + 4]), burst = tonumber(ARGV[o + 5])}
  shapes[i] = s
  cells[i] = load(i)
  local v = check(cells[i], s)
  allOK = allOK and v.ok
  delay = math.max(delay, v.delay)
  if i == 1 or outranks(v, best) then best, bestIdx = v, i end
end
for i = 1, nlimits do
  if allOK then commit(cells[i], shapes[i], i) else settle(cells[i], shapes[i], i) end
end
if not allOK then delay = 0 end
return {allOK and 1 or 0, bestIdx - 1, best.remaining, best.reset, best.retry, delay, best.never and 1 or 0}
`

// scripts holds one script per algorithm, indexed by core.Algorithm.
var scripts = [...]*redis.Script{
	core.FixedWindow:          redis.NewScript(prelude + fixedWindow + rule),
	core.SlidingWindowLog:     redis.NewScript(prelude + slidingWindowLog + rule),
	core.SlidingWindowCounter: redis.NewScript(prelude + slidingWindowCounter + rule),
	core.TokenBucket:          redis.NewScript(prelude + "local LEAKY = false\n" + bucket + rule),
	core.LeakyBucket:          redis.NewScript(prelude + "local LEAKY = true\n" + bucket + rule),
}

// keysPerLimit is how many keys one limit of the algorithm uses.
func keysPerLimit(alg core.Algorithm) int {
	if alg == core.SlidingWindowLog {
		return 2
	}
	return 1
}

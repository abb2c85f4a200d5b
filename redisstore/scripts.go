package redisstore

import (
	"crypto/sha1"
	"encoding/hex"
	"strings"

	"github.com/limitkit/limitkit/core"
)

// The scripts repeat core/decide.go step for step, in integer microseconds
// held in Lua's doubles (exact below 2^53, which core's validation keeps every
// quantity under), so that Redis and the memory store decide alike. Each
// script is one algorithm's check and commit inside the rule loop of core's
// decide: check every limit, let the most telling verdict speak (core's
// outranks), and charge all limits or none.
//
// They are written as straight-line code over local variables, with almost
// no functions or tables: Redis runs the whole chunk on every call, and each
// closure or table it creates costs a fraction of a microsecond. A first
// version with a function per step spent about 15µs of Redis's time per
// one-limit decision; this one about 10µs, against 5µs for the bare TIME,
// GET and SET it must make.
//
// KEYS: one key per limit, in rule order.
// ARGV: now in µs ("" to read Redis's TIME), cost, TTL slack in ms, then per
//       limit: count, window in µs, burst; the buckets derive core's step
//       and depth from them.
// Reply: {allowed 0|1, deciding limit (0-based), remaining, reset-after µs,
//         retry-after µs, delay µs, never 0|1}, or {-1, index of the key
//         whose state is corrupt, 0, 0, 0, 0, 0}.
//
// Every script also comes in a batched form, which runs many decisions of
// its algorithm one after another in one call; see batchTail.

// prelude starts every script: shorthands, and the state each limit's check
// keeps for its commit: A1, B1 and C1 for the first limit, SA, SB and SC,
// made only when a rule has more, for the others. Tables and closures cost
// Redis a fraction of a microsecond each to make and collect, and most rules
// have one limit.
//
// D1, D2 and D3 format one, two and three integers: %d, much cheaper than
// %.0f, is exact when Lua's integer format is 64 bits wide, as it is in
// any 64-bit build of Redis; a 32-bit build falls back to %.0f.
const prelude = `
local fmt, floor, fmod, mmax = string.format, math.floor, math.fmod, math.max
local D1, D2, D3 = '%d', '%d,%d', '%d,%d,%d'
if fmt(D1, 9007199254740991) ~= '9007199254740991' then D1, D2, D3 = '%.0f', '%.0f,%.0f', '%.0f,%.0f,%.0f' end
local A1, B1, C1, SA, SB, SC
local T
`

// counterWait is core's counterWait, which only the sliding window counter
// needs.
const counterWait = `
local function wait(prev, curr, window, count, cost)
  if prev == 0 or prev * (window - 0) / window + curr + cost <= count then return 0 end
  local room = count - curr - cost
  local e = window - floor(room * window / prev)
  e = math.min(mmax(e, 0), window)
  while e < window and not (prev * (window - e) / window + curr + cost <= count) do e = e + 1 end
  while e > 0 and prev * (window - (e - 1)) / window + curr + cost <= count do e = e - 1 end
  return e
end
`

// keep stores a check's state of limit i for its commit; load reads it back.
func keep(vars string) string {
	firsts, tables := slots(vars)
	return `
  if i == 1 then ` + firsts + ` = ` + vars + `
  else
    if not SA then SA, SB, SC = {}, {}, {} end
    ` + tables + ` = ` + vars + `
  end
`
}

func load(vars string) string {
	firsts, tables := slots(vars)
	return `
    local ` + vars + `
    if i == 1 then ` + vars + ` = ` + firsts + `
    else ` + vars + ` = ` + tables + ` end
`
}

// slots names where keep puts vars, a list of up to three names: the first
// limit's locals and the other limits' table entries.
func slots(vars string) (firsts, tables string) {
	n := strings.Count(vars, ",") + 1
	return strings.Join([]string{"A1", "B1", "C1"}[:n], ", "), strings.Join([]string{"SA[i]", "SB[i]", "SC[i]"}[:n], ", ")
}

// head starts one decision, whose keys follow KEYS[kb] and whose arguments
// follow ARGV[ab], with n limits: the time (Redis's TIME, read once per
// script), the cost, and the rule's verdict.
const head = `
local now = ARGV[ab + 1]
if now == '' then
  if not T then
    local t = redis.call('TIME')
    T = t[1] * 1000000 + t[2]
  end
  now = T
else
  now = tonumber(now)
end
local cost, slack = tonumber(ARGV[ab + 2]), tonumber(ARGV[ab + 3])
local allOK, delay = true, 0
local bOk, bNever, bRem, bReset, bRetry, bIdx = true, false, 0, 0, 0, 1
`

// loop starts the loop that checks each limit into ok, never, rem, reset,
// retry and dly.
const loop = `
for i = 1, n do
  local o = ab + (i - 1) * 3
  local count, window, burst = tonumber(ARGV[o + 4]), tonumber(ARGV[o + 5]), tonumber(ARGV[o + 6])
  local ok, never, rem, reset, retry, dly = false, false, 0, 0, 0, 0
`

// middle is core's outranks, then the loop that commits (or settles) each
// limit.
const middle = `
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
for i = 1, n do
  local window = tonumber(ARGV[ab + (i - 1) * 3 + 5])
`

const tail = `
end
if not allOK then delay = 0 end
return {allOK and 1 or 0, bIdx - 1, bRem, bReset, bRetry, delay, bNever and 1 or 0}
`

// batchReply ends a decision of a batch instead of tail: it appends the
// reply to the batch's out, which saves a table per decision, and returns
// nothing; only corrupt state returns a reply of its own.
const batchReply = `
end
if not allOK then delay = 0 end
local o = #out
out[o + 1], out[o + 2], out[o + 3], out[o + 4] = allOK and 1 or 0, bIdx - 1, bRem, bReset
out[o + 5], out[o + 6], out[o + 7] = bRetry, delay, bNever and 1 or 0
`

// corrupt is the reply for state this store did not write, naming the key
// by its index among the decision's keys: the batched scripts must answer
// the other decisions of the batch, so it is a reply, not an error.
func corrupt(index string) string {
	return `return {-1, ` + index + `, 0, 0, 0, 0, 0}`
}

// ttl sets t to how long, in ms, a key must live to outlast exp (µs), plus
// the slack a driven clock needs; zero when its state is as good as none.
func ttl(exp string) string {
	return `
    local t = slack
    if ` + exp + ` > now then t = t + math.ceil((` + exp + ` - now) / 1000) end
`
}

// FixedWindow's state is core's cell "a,b": window start and count.
var fixedCheck = `
  local a, b = 0, 0
  local v = redis.pcall('GET', KEYS[kb + i])
  if v then
    if type(v) ~= 'string' then ` + corrupt("i - 1") + ` end
    local x, y = string.match(v, '^(%-?%d+),(%-?%d+)$')
    a, b = tonumber(x), tonumber(y)
    if not b then ` + corrupt("i - 1") + ` end
  end
` + keep("a, b") + `  local ws, cnt = now - fmod(now, window), b
  if ws > a then cnt = 0 else ws = a end
  reset = ws + window - now
  if cost <= count and cnt + cost <= count then
    ok, rem = true, count - cnt - cost
  else
    rem = mmax(count - cnt, 0)
    if cost > count then never = true else retry = ws + window - now end
  end
`

var fixedCommit = `
  if allOK then` + load("a, b") + `    local ws = now - fmod(now, window)
    if ws > a then a, b = ws, 0 end
    b = b + cost` + ttl("a + window") + `
    if t > 0 then
      redis.call('SET', KEYS[kb + i], fmt(D2, a, b), 'PX', t)
    else
      redis.call('DEL', KEYS[kb + i])
    end
  end
`

// SlidingWindowCounter's state is core's cell "a,b,c": window start,
// current count, previous count. wait (counterWait) is core's counterWait;
// the estimate keeps core's order of operations, so the doubles are the
// same.
var counterCheck = `
  local a, b, c = 0, 0, 0
  local v = redis.pcall('GET', KEYS[kb + i])
  if v then
    if type(v) ~= 'string' then ` + corrupt("i - 1") + ` end
    local x, y, z = string.match(v, '^(%-?%d+),(%-?%d+),(%-?%d+)$')
    a, b, c = tonumber(x), tonumber(y), tonumber(z)
    if not c then ` + corrupt("i - 1") + ` end
  end
` + keep("a, b, c") + `  local ws, curr, prev = now - fmod(now, window), 0, 0
  if ws <= a then
    ws, curr, prev = a, b, c
  elseif ws == a + window then
    prev = b
  end
  local elapsed = math.min(mmax(now - ws, 0), window)
  local est = prev * (window - elapsed) / window + curr
  if curr > 0 then
    reset = ws + 2 * window - now
  elseif prev > 0 then
    reset = ws + window - now
  end
  if cost <= count and est + cost <= count then
    ok = true
    rem = floor(count - est - cost)
    reset = ws + 2 * window - now
  else
    rem = mmax(floor(count - est), 0)
    if cost > count then
      never = true
    elseif curr + cost <= count then
      retry = ws + wait(prev, curr, window, count, cost) - now
    else
      retry = ws + window + wait(curr, 0, window, count, cost) - now
    end
  end
`

var counterCommit = `
  if allOK then` + load("a, b, c") + `    local ws = now - fmod(now, window)
    if ws <= a then
    elseif ws == a + window then
      a, b, c = ws, 0, b
    else
      a, b, c = ws, 0, 0
    end
    b = b + cost` + ttl("a + 2 * window") + `
    if t > 0 then
      redis.call('SET', KEYS[kb + i], fmt(D3, a, b, c), 'PX', t)
    else
      redis.call('DEL', KEYS[kb + i])
    end
  end
`

// The buckets are GCRA: the state is the theoretical arrival time alone.
// LEAKY is defined before this part. step and depth are core's shape:
// window/count rounded up, corrected should the doubles' division land on
// the wrong side, and burst·step, which core's validation keeps exact. The
// check keeps each step for the commit.
var bucketCheck = `
  local step = floor((window + count - 1) / count)
  if step * count < window then step = step + 1 end
  if (step - 1) * count >= window then step = step - 1 end
  local depth = burst * step
  local a = 0
  local v = redis.pcall('GET', KEYS[kb + i])
  if v then
    a = tonumber(v)
    if not a then ` + corrupt("i - 1") + ` end
  end
` + keep("a, step") + `  local tat = mmax(a, now)
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
`

var bucketCommit = `
  if allOK then` + load("a, step") + `    a = mmax(a, now) + cost * step` + ttl("a") + `
    if t > 0 then
      redis.call('SET', KEYS[kb + i], fmt(D1, a), 'PX', t)
    else
      redis.call('DEL', KEYS[kb + i])
    end
  end
`

// The sliding window log is core's eventLog, in one list: the total of the
// costs that left the log (its base), then a time and a running total for
// each admitted request, oldest first, with equal times merged:
// base, t1, c1, t2, c2, ... The running totals make both of the log's
// searches binary searches, for the first request still in the window and
// for the one whose expiry frees enough, so that a decision reads a few
// entries however long the log and whatever the cost; dropping the first k
// requests is one LTRIM from the k-th total, which becomes the new base. The
// check keeps for the commit the newest time and total (false when the log
// is empty) and the base.
var logCheck = `
  local lk = KEYS[kb + i]
  local base, newest, total, sum, pairs = 0, false, 0, 0, false
  local hd = redis.pcall('LRANGE', lk, 0, 1)
  if hd.err then ` + corrupt("i - 1") + ` end
  if #hd > 0 then
    base = tonumber(hd[1])
    local first = tonumber(hd[2])
    if not (base and first) then ` + corrupt("i - 1") + ` end
    local tl = redis.call('LRANGE', lk, -2, -1)
    newest, total = tonumber(tl[1]), tonumber(tl[2])
    if not (newest and total) then ` + corrupt("i - 1") + ` end
    local cutoff = now - window
    if newest <= cutoff then
      -- Everything left the window.
      redis.call('DEL', lk)
      base, newest, total = 0, false, 0
    elseif first <= cutoff then
      -- Find the first request still in: pair lo has left, pair hi has not.
      local len = redis.call('LLEN', lk)
      if len % 2 ~= 1 then ` + corrupt("i - 1") + ` end
      pairs = (len - 1) / 2
      local lo, hi = 1, pairs
      while hi - lo > 1 do
        local mid = floor((lo + hi) / 2)
        local at = tonumber(redis.call('LINDEX', lk, 2 * mid - 1))
        if not at then ` + corrupt("i - 1") + ` end
        if at <= cutoff then lo = mid else hi = mid end
      end
      redis.call('LTRIM', lk, 2 * lo, -1)
      base = tonumber(redis.call('LINDEX', lk, 0))
      if not base then ` + corrupt("i - 1") + ` end
      pairs = pairs - lo
    end
    sum = total - base
    if newest then reset = newest + window - now end
  end
` + keep("newest, total, base") + `  if cost <= count and sum + cost <= count then
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
        if not c then ` + corrupt("i - 1") + ` end
        if c - base >= need then hi = mid else lo = mid end
      end
      local at = tonumber(redis.call('LINDEX', lk, 2 * hi - 1))
      if not at then ` + corrupt("i - 1") + ` end
      retry = at + window - now
    end
  end
`

// logCommit charges an admission. Should the totals grow near where doubles
// stop being exact, which takes 2^50 units of cost admitted under one key
// without its log ever emptying, it rewrites them from zero once.
var logCommit = `
  local lk = KEYS[kb + i]` + load("newest, total, base") + `  -- A request of cost 0 only looks: logging it would let the log outgrow
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
    -- The newest request is now at now, or later if the clock went back.` + ttl("math.max(now, newest or now) + window") + `
    redis.call('PEXPIRE', lk, t)
  end
`

// script is one algorithm's script in two forms: one decision, and a batch
// of decisions run one after another in one call (see batchTail). Each is
// kept with its SHA-1 and as interface values, so that a command's
// arguments can refer to them without allocating.
type script struct {
	one, many       any // source
	oneSHA, manySHA any // SHA-1 in hex
}

func newScript(alg, check, commit string) *script {
	body := head + loop + check + middle + commit
	one := prelude + alg + "local kb, ab, n = 0, 0, (#ARGV - 3) / 3\n" + body + tail
	many := prelude + alg + "local out = {}\nlocal function decide(kb, ab, n)\n" + body + batchReply + "end\n" + batchTail
	return &script{one: one, many: many, oneSHA: sha1hex(one), manySHA: sha1hex(many)}
}

func sha1hex(s string) string {
	sum := sha1.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// batchTail runs the decisions of a batch: ARGV holds, for each, its number
// of limits n and then its own arguments (as for one decision), and KEYS
// its keys, one per limit. The reply is every decision's reply, one after
// another.
const batchTail = `
local kb, ab, m = 0, 0, #ARGV
while ab < m do
  local n = tonumber(ARGV[ab + 1])
  local r = decide(kb, ab + 1, n)
  if r then
    local o = #out
    for j = 1, 7 do out[o + j] = r[j] end
  end
  kb = kb + n
  ab = ab + 4 + 3 * n
end
return out
`

// scripts holds one script per algorithm, indexed by core.Algorithm.
var scripts = [...]*script{
	core.FixedWindow:          newScript("", fixedCheck, fixedCommit),
	core.SlidingWindowLog:     newScript("", logCheck, logCommit),
	core.SlidingWindowCounter: newScript(counterWait, counterCheck, counterCommit),
	core.TokenBucket:          newScript("local LEAKY = false\n", bucketCheck, bucketCommit),
	core.LeakyBucket:          newScript("local LEAKY = true\n", bucketCheck, bucketCommit),
}

-- The script-wide part of every script: the algorithm's name, shorthands,
-- and the state each limit's check keeps for its commit.
--{{algorithm}}
local fmt, floor, fmod, mmax = string.format, math.floor, math.fmod, math.max
-- D1, D2 and D3 format one, two and three integers: %d, much cheaper than
-- %.0f, is exact when Lua's integer format is 64 bits wide, as it is in any
-- 64-bit build of Redis; a 32-bit build falls back to %.0f.
local D1, D2, D3 = '%d', '%d,%d', '%d,%d,%d'
if fmt(D1, 9007199254740991) ~= '9007199254740991' then D1, D2, D3 = '%.0f', '%.0f,%.0f', '%.0f,%.0f,%.0f' end
-- A check keeps up to three values of limit i for its commit: in A1, B1 and
-- C1 for the first limit, in SA[i], SB[i] and SC[i], made only when a rule
-- has more, for the others. Tables cost Redis a fraction of a microsecond
-- each to make and collect, and most rules have one limit.
local A1, B1, C1, SA, SB, SC
-- W1 is the first limit's window, which its commit reads again.
local W1
-- nowCache is Redis's TIME in µs, read at most once per script run.
local nowCache
--{{helpers}}

-- The script-wide part of every script: the algorithm's name, shorthands,
-- and the state each limit's check keeps for its commit.
--{{algorithm}}
local fmt, floor, mmax, su, sp = string.format, math.floor, math.max, struct.unpack, struct.pack
-- R packs a decision's reply: five doubles, a string Redis sends as it is,
-- where a table of five integers costs it 4,000 instructions more to read
-- and convert.
local R = '<ddddd'
-- windowStart: a decision's window starts at now - now % window, as in
-- core's windowStart, with an operator where math.fmod was a call. Lua's %
-- floors where Go's truncates, which differs only before 1970; there both
-- give a start below any state's (a state's window starts at 0 or later),
-- so both stores keep the state's window alike. A refund compares the start
-- with the state's, and truncates as core does (math.fmod); see
-- TestWindows_startAsCoreBefore1970.
-- D1, D2 and D3 format one, two and three integers: %d, much cheaper than
-- %.0f, is exact when Lua formats it from a 64-bit C long, as any 64-bit
-- build of Redis does; a 32-bit build falls back to %.0f. struct.size tells
-- the width of a long for 1,600 fewer instructions than formatting a test
-- number, on every run of every script.
local D1, D2, D3 = '%d', '%d,%d', '%d,%d,%d'
if struct.size('l') < 8 then D1, D2, D3 = '%.0f', '%.0f,%.0f', '%.0f,%.0f,%.0f' end
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

-- The dead letters numbered above a reader's cursor, atomically. (Loaded alone.)
--
-- KEYS[1]  {ns}:dead           list of dead-letter JSON, in number order
-- KEYS[2]  {ns}:dead:written   counter: letters ever pushed (dead.lua)
-- ARGV[1]  the cursor: the highest number the reader has seen (0: none)
--
-- Returns {written, letters...}: the last written - cursor letters (fewer if some were
-- removed); the caller skips any numbered at or below its cursor. written is at least the
-- list's length, so letters pushed before numbering existed count by position.
local length = redis.call('LLEN', KEYS[1])
local written = math.max(tonumber(redis.call('GET', KEYS[2]) or '0'), length)
local wanted = math.min(length, written - tonumber(ARGV[1]))
local reply = {}
if wanted > 0 then reply = redis.call('LRANGE', KEYS[1], -wanted, -1) end
table.insert(reply, 1, written)
return reply

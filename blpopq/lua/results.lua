-- Read, or discard, the results list by INDEX: the number of results pushed before one, which
-- stays the same however much is trimmed from the head (retention, a --drain collector).
--
-- KEYS[1]  {ns}:results          list of result JSON, oldest at the head
-- KEYS[2]  {ns}:results:written  counter: results ever pushed (settle.lua, take.lua)
-- ARGV[1]  'read' or 'discard'
-- ARGV[2]  read: the index to read from ('' = from the head, whatever it is);
--          discard: remove every result whose index is below this one (those a reader has
--          finished with), and nothing pushed since
-- ARGV[3]  read: how many results at most
--
-- The head's index is written - LLEN (0 for a list pushed to without counting: read by
-- position, as before retention existed). Returns {head, from, results...}: `from` is the
-- index of the first result returned: above the one asked for when older results were
-- trimmed before this read (the caller counts them as missed), below it only when the keys
-- were deleted and counting started again. For 'discard': {head, how many were removed}.
local length = redis.call('LLEN', KEYS[1])
local written = tonumber(redis.call('GET', KEYS[2]) or '0')
if written < length then
  -- Uncounted pushes: index by position. Before removing any, start the counter there, or
  -- the indexes of what stays would go down.
  if ARGV[1] == 'discard' then redis.call('SET', KEYS[2], length) end
  written = length
end
local head = written - length
if ARGV[1] == 'discard' then
  local drop = math.min(tonumber(ARGV[2]) - head, length)
  if drop <= 0 then return {head, 0} end
  redis.call('LTRIM', KEYS[1], drop, -1)
  return {head, drop}
end
local from = tonumber(ARGV[2]) or head
if from < head or from > written then
  from = head  -- trimmed before this read (missed), or the keys were deleted (start again)
end
local reply = redis.call('LRANGE', KEYS[1], from - head, from - head + tonumber(ARGV[3]) - 1)
table.insert(reply, 1, from)
table.insert(reply, 1, head)
return reply

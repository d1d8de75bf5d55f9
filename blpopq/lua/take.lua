-- Take one task and number it, atomically, so the attention order is the take order.
--
-- KEYS[1..3]  tier lists ({ns}:vip, {ns}:alto, {ns}:comun), highest priority first
-- KEYS[4]     {ns}:inflight  hash: task id -> claim record (JSON: position, worker, tier, task)
-- KEYS[5]     {ns}:position  counter: the attention order
-- ARGV[1]     worker id (host:pid)
-- ARGV[2]     a task BLPOP already removed from a tier list, or '' to pop here
-- ARGV[3]     with ARGV[2]: the 1-based index of the tier it came from
--
-- Returns {tier index, task, position, claimed (1|0)} or false when every tier is empty.
-- A task whose JSON has no string "id" is returned unclaimed: the worker dead-letters it.
local raw, tier = ARGV[2], tonumber(ARGV[3])
if raw == '' then
  raw = false
  for i = 1, 3 do
    raw = redis.call('LPOP', KEYS[i])
    if raw then tier = i; break end
  end
  if not raw then return false end
end
local position = redis.call('INCR', KEYS[5])
local ok, task = pcall(cjson.decode, raw)
if not ok or type(task) ~= 'table' or type(task.id) ~= 'string' then
  return {tier, raw, position, 0}
end
local record = cjson.encode({position = position, worker = ARGV[1], tier = tier, task = raw})
redis.call('HSET', KEYS[4], task.id, record)
return {tier, raw, position, 1}

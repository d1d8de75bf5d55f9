-- Take one task and number it, atomically, so the attention order is the take order.
--
-- KEYS[1..3]  tier lists, highest priority first
-- KEYS[4..6]  {ns}:queued:<tier> sorted sets (id -> sequence) of the same tiers
-- KEYS[7]     {ns}:inflight  hash: task id -> claim (JSON: position, worker, tier, task)
-- KEYS[8]     {ns}:position  counter: the attention order
-- KEYS[9]     {ns}:workers   sorted set: live worker -> lease expiry (ms, Redis clock)
-- KEYS[10]    {ns}:epochs    hash: worker -> how many takes it has begun
-- ARGV[1]     worker id (host:pid)
-- ARGV[2]     a task BLPOP already removed from a tier list, or '' to pop here
-- ARGV[3]     with ARGV[2]: the 1-based index of the tier it came from
-- KEYS[11..13] and ARGV[4..7], optional: {ns}:results, {ns}:tasks, {ns}:results:written
--             (counter: results ever pushed), and the id, claim position and result JSON of
--             the task this worker just finished, and how many results to keep (0: all).
--             Settling it here (with settle.lua's own functions, from settling.lua) saves a
--             round trip per task.
--
-- Returns {settled, tier, task, position, claimed (1|0)}; {settled} when every tier is
-- empty; {settled, -1} when this worker was declared dead (its lease ran out): it must drop
-- what it holds and exit. settled is 1 (written), 0 (fenced off) or -1 (nothing to settle).
-- The epoch bump tells the reaper that whatever this worker popped before is now claimed.
local settled = -1
if ARGV[4] and ARGV[4] ~= '' then
  settled = 0
  if holds_claim(KEYS[7], ARGV[4], ARGV[5]) then
    close_with_result(KEYS[7], KEYS[12], KEYS[11], KEYS[13], ARGV[4], ARGV[6], ARGV[7])
    settled = 1
  end
end
if not redis.call('ZSCORE', KEYS[9], ARGV[1]) then
  return {settled, -1}
end
redis.call('HINCRBY', KEYS[10], ARGV[1], 1)
local raw, tier = ARGV[2], tonumber(ARGV[3])
if raw == '' then
  raw = false
  for i = 1, 3 do
    raw = redis.call('LPOP', KEYS[i])
    if raw then tier = i; break end
  end
  if not raw then return {settled} end
end
local position = redis.call('INCR', KEYS[8])
local ok, task = pcall(cjson.decode, raw)
if not ok or type(task) ~= 'table' or type(task.id) ~= 'string' then
  return {settled, tier, raw, position, 0}
end
redis.call('ZREM', KEYS[3 + tier], task.id)
local claim = cjson.encode({position = position, worker = ARGV[1], tier = tier, task = raw})
redis.call('HSET', KEYS[7], task.id, claim)
return {settled, tier, raw, position, 1}

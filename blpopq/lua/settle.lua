-- Settle a claimed task: write its outcome and end the claim, only if the claim is still ours.
--
-- KEYS[1]  {ns}:inflight  hash: task id -> claim record
-- KEYS[2]  where the outcome goes: {ns}:results, {ns}:dead, or a tier list (requeue)
-- ARGV[1]  task id
-- ARGV[2]  the claim's position (its generation: every claim gets a new one)
-- ARGV[3]  the value to push: result JSON, dead-letter JSON, or the task itself
-- ARGV[4]  'tail' (RPUSH: results, dead letters) or 'head' (LPUSH: requeue keeps its place)
--
-- Returns 1 when written, 0 when fenced off: the claim is gone or belongs to a newer take,
-- so a stale or repeated settle can never add a second outcome for one task.
local record = redis.call('HGET', KEYS[1], ARGV[1])
if not record or cjson.decode(record).position ~= tonumber(ARGV[2]) then
  return 0
end
if ARGV[4] == 'head' then
  redis.call('LPUSH', KEYS[2], ARGV[3])
else
  redis.call('RPUSH', KEYS[2], ARGV[3])
end
redis.call('HDEL', KEYS[1], ARGV[1])
return 1

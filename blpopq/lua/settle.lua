-- Settle a claimed task: write its outcome and end the claim, only if the claim is still ours.
--
-- KEYS[1]  {ns}:inflight  hash: task id -> claim
-- KEYS[2]  where the outcome goes: {ns}:results, {ns}:dead, or the task's tier list
-- KEYS[3]  {ns}:tasks     hash: task id -> task JSON while open
-- KEYS[4]  {ns}:queued:<tier>  (requeue only), or {ns}:results:written (result only):
--          a counter of every result ever pushed, which trimming never lowers
-- KEYS[5]  {ns}:headseq:<tier> counter going down from 0 (requeue only)
-- ARGV[1]  task id
-- ARGV[2]  the claim's position: its generation, since every take numbers anew
-- ARGV[3]  the value to push: result JSON, dead-letter JSON, or the task to run again
-- ARGV[4]  'tail' (RPUSH an outcome: the task is closed), 'result' (the same onto the results
--          list, counted and trimmed) or 'head' (LPUSH it back: still open)
-- ARGV[5]  'result' only: how many results to keep, newest first (0: keep all)
--
-- Returns 1 when written, 0 when fenced off: the claim is gone or belongs to a newer take,
-- so a stale or repeated settle can never add a second outcome for one task (nor trim).
local claim = redis.call('HGET', KEYS[1], ARGV[1])
if not claim or cjson.decode(claim).position ~= tonumber(ARGV[2]) then
  return 0
end
redis.call('HDEL', KEYS[1], ARGV[1])
if ARGV[4] == 'head' then
  redis.call('LPUSH', KEYS[2], ARGV[3])
  if redis.call('HEXISTS', KEYS[3], ARGV[1]) == 1 then
    -- Still registered: keep the list in sequence order with a sequence below all others.
    redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
    redis.call('ZADD', KEYS[4], redis.call('DECR', KEYS[5]), ARGV[1])
  end
else
  local length = redis.call('RPUSH', KEYS[2], ARGV[3])
  redis.call('HDEL', KEYS[3], ARGV[1])
  if ARGV[4] == 'result' then
    -- A reader's index of the i-th listed result is written - LLEN + i, however much was
    -- trimmed. A missing counter beside a non-empty list (results written before retention
    -- existed) starts at the list's length, so that stays true.
    if redis.call('INCR', KEYS[4]) == 1 then redis.call('SET', KEYS[4], length) end
    local keep = tonumber(ARGV[5]) or 0
    if keep > 0 and length > keep then redis.call('LTRIM', KEYS[2], -keep, -1) end
  end
end
return 1

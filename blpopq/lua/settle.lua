-- Settle a claimed task: write its outcome and end the claim, only if the claim is still ours.
-- (Loaded after settling.lua, which defines holds_claim and close_with_result.)
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
if not holds_claim(KEYS[1], ARGV[1], ARGV[2]) then
  return 0
end
if ARGV[4] == 'result' then
  close_with_result(KEYS[1], KEYS[3], KEYS[2], KEYS[4], ARGV[1], ARGV[3], ARGV[5])
  return 1
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
  redis.call('RPUSH', KEYS[2], ARGV[3])
  redis.call('HDEL', KEYS[3], ARGV[1])
end
return 1

-- Put a claimed task back at the head of its tier and end the claim, only if the claim is
-- still ours: the task is then queued or claimed, never both. (Loaded after settling.lua.)
--
-- KEYS[1]  {ns}:inflight   KEYS[2]  the task's tier list   KEYS[3]  {ns}:tasks
-- KEYS[4]  {ns}:queued:<tier>   KEYS[5]  {ns}:headseq:<tier>: a counter going down from 0
-- ARGV[1]  claim key (the task id)   ARGV[2]  the claim's position
-- ARGV[3]  the task to run again
--
-- Returns 1 when put back, 0 when fenced off.
if not holds_claim(KEYS[1], ARGV[1], ARGV[2]) then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('LPUSH', KEYS[2], ARGV[3])
if redis.call('HEXISTS', KEYS[3], ARGV[1]) == 1 then
  -- Still registered: keep the list in sequence order with a sequence below all others.
  redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
  redis.call('ZADD', KEYS[4], redis.call('DECR', KEYS[5]), ARGV[1])
end
return 1

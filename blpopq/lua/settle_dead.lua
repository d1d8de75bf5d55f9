-- Dead-letter a claimed task and end the claim, only if the claim is still ours.
-- (Loaded after settling.lua and dead.lua.)
--
-- KEYS[1]  {ns}:inflight   KEYS[2]  {ns}:tasks   KEYS[3]  {ns}:dead
-- KEYS[4]  {ns}:dead:written
-- ARGV[1]  claim key   ARGV[2]  the claim's position   ARGV[3]  dead-letter JSON
--
-- Returns 1 when written, 0 when fenced off.
if not holds_claim(KEYS[1], ARGV[1], ARGV[2]) then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
push_dead(KEYS[3], KEYS[4], ARGV[3])
return 1

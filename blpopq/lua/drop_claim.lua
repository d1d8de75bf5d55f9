-- Replace a claim record that cannot be read (not written by blpopq, or damaged) with a dead
-- letter, only if the record is still exactly the one the caller read. (Loaded after dead.lua.)
--
-- KEYS[1]  {ns}:inflight   KEYS[2]  {ns}:tasks   KEYS[3]  {ns}:dead
-- KEYS[4]  {ns}:dead:written
-- ARGV[1]  claim key   ARGV[2]  the record as read   ARGV[3]  dead-letter JSON
--
-- Returns 1 when replaced, 0 when the record changed meanwhile.
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
push_dead(KEYS[3], KEYS[4], ARGV[3])
return 1

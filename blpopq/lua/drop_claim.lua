-- Replace a claim record that cannot be read (not written by blpopq, or damaged) with a dead
-- letter, only if the record is still exactly the one the caller read.
--
-- KEYS[1]  {ns}:inflight   KEYS[2]  {ns}:tasks   KEYS[3]  {ns}:dead
-- ARGV[1]  claim key   ARGV[2]  the record as read   ARGV[3]  dead-letter JSON
--
-- Returns 1 when replaced, 0 when the record changed meanwhile.
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('RPUSH', KEYS[3], ARGV[3])
return 1

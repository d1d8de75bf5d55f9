-- Open a new session for a worker: the number its takes must carry from now on, so that a
-- take or claim still on its way from a connection it gave up is refused (taking.lua).
--
-- KEYS[1]  {ns}:sessions  hash: worker -> its current connection's number
-- KEYS[2]  {ns}:workers   sorted set: live worker -> lease expiry
-- ARGV[1]  worker id
--
-- Returns the new session, or 0 (nothing written) for a worker that is not alive: it must
-- join first. The taking scripts rely on it: a session is never there without its worker.
--
-- HDEL before HSET (not HINCRBY): a removal first lets this run when Redis is over its
-- maxmemory, so a worker can reconnect to a full Redis and drain it (see taking.lua).
if not redis.call('ZSCORE', KEYS[2], ARGV[1]) then return 0 end
local session = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0') + 1
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], session)
return session

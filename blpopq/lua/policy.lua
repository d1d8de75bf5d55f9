-- Record the fairness policy of a namespace's takes, or name the one in force.
-- (Loaded after clock.lua.)
--
-- KEYS[1]  {ns}:policy   hash: spec (the policy's canonical spelling), held_until (ms, Redis
--                        clock: a daemon that set it is still starting its workers)
-- KEYS[2]  {ns}:workers  sorted set: live worker -> lease expiry (ms, Redis clock)
-- ARGV[1]  the caller's policy spec      ARGV[2]  ms the record is held while workers start
--
-- A policy is in force while a daemon of the namespace is alive: some worker's lease has not
-- run out, or a daemon set it less than ARGV[2] ms ago. Then a different policy is refused and
-- the reply is the one in force; otherwise the caller's is recorded and returned.
local ms = redis_ms()
local current = redis.call('HGET', KEYS[1], 'spec')
if current and current ~= ARGV[1] then
  local held = tonumber(redis.call('HGET', KEYS[1], 'held_until') or '0') > ms
  if held or redis.call('ZCOUNT', KEYS[2], ms, '+inf') > 0 then return current end
end
redis.call('HSET', KEYS[1], 'spec', ARGV[1], 'held_until', ms + tonumber(ARGV[2]))
return ARGV[1]

-- A worker's lease, on Redis's clock so that skew between hosts cannot expire a live worker.
--
-- KEYS[1]  {ns}:workers  sorted set: worker -> lease expiry (ms since the epoch, Redis TIME)
-- KEYS[2]  {ns}:epochs   hash: worker -> takes begun
-- KEYS[3]  {ns}:sessions hash: worker -> its current connection's number (removed on leave)
-- ARGV[1]  worker id
-- ARGV[2]  'join' | 'beat' | 'leave'
-- ARGV[3]  lease length in ms
--
-- 'beat' never brings back a worker the reaper declared dead (returns 0): that worker's
-- claims were given to others, so it must stop and start again under a new identity.
local now = redis.call('TIME')
local expiry = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) + tonumber(ARGV[3])
if ARGV[2] == 'leave' then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
  redis.call('HDEL', KEYS[3], ARGV[1])
  return 1
end
if ARGV[2] == 'beat' and not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  return 0
end
redis.call('ZADD', KEYS[1], expiry, ARGV[1])
return 1

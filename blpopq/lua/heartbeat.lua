-- A worker's lease, on Redis's clock so that skew between hosts cannot expire a live worker.
-- (Loaded after clock.lua and outage.lua.)
--
-- KEYS[1]  {ns}:workers  sorted set: worker -> lease expiry (ms since the epoch, Redis TIME)
-- KEYS[2]  {ns}:epochs   hash: worker -> takes begun
-- KEYS[3]  {ns}:sessions hash: worker -> its current connection's number (removed on leave)
-- KEYS[4]  {ns}:alive_at when a worker last reached Redis (ms, Redis TIME): outage.lua
-- ARGV[1]  worker id
-- ARGV[2]  'join' | 'beat' | 'leave'
-- ARGV[3]  lease length in ms
-- ARGV[4]  'join'/'beat': the longest gap expected between two beats of a live pool, ms
-- KEYS[5]  {ns}:kernels  hash: worker -> the kernel it runs   ARGV[5]  'join': that kernel
--
-- 'beat' never brings back a worker the reaper declared dead (returns 0): that worker's
-- claims were given to others, so it must stop and start again under a new identity.
local now_ms = redis_ms()
local expiry = now_ms + tonumber(ARGV[3])
if ARGV[2] == 'leave' then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
  redis.call('HDEL', KEYS[3], ARGV[1])
  redis.call('HDEL', KEYS[5], ARGV[1])
  return 1
end
forgive_outage(KEYS[1], KEYS[4], now_ms, tonumber(ARGV[4]))
if ARGV[2] == 'beat' and not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  return 0
end
redis.call('ZADD', KEYS[1], expiry, ARGV[1])
if ARGV[2] == 'join' then redis.call('HSET', KEYS[5], ARGV[1], ARGV[5]) end
return 1

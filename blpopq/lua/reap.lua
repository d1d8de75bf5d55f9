-- Find work that lost its worker. Runs atomically; any process may run it at any time.
-- (Loaded after settling.lua, for read_claim, clock.lua and outage.lua.)
--
-- KEYS[1]     {ns}:workers   sorted set: worker -> lease expiry (ms, Redis clock)
-- KEYS[2]     {ns}:epochs    hash: worker -> takes begun
-- KEYS[3]     {ns}:inflight  hash: claim key -> claim (JSON)
-- KEYS[4]     {ns}:suspects  hash: task id -> JSON {since, seq, epochs of the workers alive then}
-- KEYS[5]     {ns}:position  counter
-- KEYS[6]     {ns}:tasks     hash: task id -> task JSON
-- KEYS[7]     {ns}:sessions  hash: worker -> its current connection's number
-- KEYS[8]     {ns}:alive_at  when a worker last reached Redis: a beat or a scheduled pass (ms)
-- KEYS[9]     {ns}:kernels   hash: worker -> the kernel it runs
-- KEYS[10..]  the n tier lists, then their n {ns}:queued:<tier> sorted sets
-- ARGV[1]     orphan grace, ms: how long a popped, unclaimed task waits before it is taken back
-- ARGV[2]     n, the number of tiers
-- ARGV[3]     1 for a scheduled pass, 0 for one out of schedule
-- ARGV[4]     the longest gap expected between two beats or passes while a pool lives, ms
-- ARGV[5..]   the n tier names, in the order of KEYS (what a claim records)
--
-- 0. A scheduled pass first forgives an outage of Redis (outage.lua).
-- 1. Workers whose lease ran out are declared dead: removed, so they can neither take, claim
--    nor renew their lease again.
-- 2. Orphans: registered tasks whose sequence is below their list's head were popped by BLPOP;
--    once claimed they leave the sorted set. One still there is suspect: we note the epoch of
--    every live worker. When each of those has died or begun another take since (so it is not
--    between BLPOP and its claim), the task is nobody's: we claim it for 'orphan'.
-- 3. Returns every claim whose worker is not alive, and every claim record that cannot be
--    read: {key1, claim1, key2, claim2, ...}. The caller decides (requeue at the head, or
--    dead-letter) and settles each, fenced.
local now = redis_ms()
local n = tonumber(ARGV[2])

if ARGV[3] == '1' then forgive_outage(KEYS[1], KEYS[8], now, tonumber(ARGV[4])) end

for _, worker in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)) do
  redis.call('ZREM', KEYS[1], worker)
  redis.call('HDEL', KEYS[2], worker)
  redis.call('HDEL', KEYS[7], worker)
  redis.call('HDEL', KEYS[9], worker)
end

local function decoded(raw)
  local ok, value = pcall(cjson.decode, raw)
  return ok and type(value) == 'table' and value or nil
end

local function head_sequence(list, queued)
  local head = redis.call('LRANGE', list, 0, 0)[1]
  if not head then return '+inf' end
  local task = decoded(head)
  local seq = task and type(task.id) == 'string' and redis.call('ZSCORE', queued, task.id)
  return seq and ('(' .. seq) or nil  -- an unregistered head: no safe bound this time
end

local function live_epochs()
  local epochs = {}
  for _, worker in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
    epochs[worker] = tonumber(redis.call('HGET', KEYS[2], worker) or '0')
  end
  return epochs
end

local function nobody_holds(suspect)
  if now - suspect.since < tonumber(ARGV[1]) then return false end
  for worker, epoch in pairs(suspect.epochs) do
    local current = tonumber(redis.call('HGET', KEYS[2], worker) or '0')
    if current <= epoch and redis.call('ZSCORE', KEYS[1], worker) then
      return false
    end
  end
  return true
end

local function usable(note)
  return note and type(note.since) == 'number' and type(note.epochs) == 'table' and note or nil
end

for tier = 1, n do
  local list, queued = KEYS[9 + tier], KEYS[9 + n + tier]
  local bound = head_sequence(list, queued)
  if bound then
    local popped = redis.call('ZRANGEBYSCORE', queued, '-inf', bound, 'WITHSCORES', 'LIMIT', 0, 100)
    for i = 1, #popped, 2 do
      local id, seq = popped[i], popped[i + 1]
      local noted = usable(decoded(redis.call('HGET', KEYS[4], id) or ''))
      -- A note made before the task was claimed and put back (a new sequence) is about an
      -- earlier pop by other workers: judging this pop by it could rob a live worker.
      if not noted or noted.seq ~= seq then
        local snapshot = cjson.encode({since = now, seq = seq, epochs = live_epochs()})
        redis.call('HSET', KEYS[4], id, snapshot)
      elseif nobody_holds(noted) then
        redis.call('ZREM', queued, id)
        redis.call('HDEL', KEYS[4], id)
        local claim = {position = redis.call('INCR', KEYS[5]), worker = 'orphan',
                       tier = ARGV[4 + tier], task = redis.call('HGET', KEYS[6], id)}
        redis.call('HSET', KEYS[3], id, cjson.encode(claim))
      end
    end
  end
end

-- Suspects that were claimed after all need no watching.
for _, id in ipairs(redis.call('HKEYS', KEYS[4])) do
  local still = false
  for tier = 1, n do
    if redis.call('ZSCORE', KEYS[9 + n + tier], id) then still = true end
  end
  if not still then redis.call('HDEL', KEYS[4], id) end
end

local lost = {}
local claims = redis.call('HGETALL', KEYS[3])
for i = 1, #claims, 2 do
  local claim = read_claim(KEYS[3], claims[i])
  if not claim or not redis.call('ZSCORE', KEYS[1], claim.worker) then
    lost[#lost + 1] = claims[i]
    lost[#lost + 1] = claims[i + 1]
  end
end
return lost

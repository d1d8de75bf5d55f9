-- Push new tasks onto their tier lists and register them as open, all in one step.
--
-- For n = ARGV[1] tiers, highest priority first:
-- KEYS[1..n]       tier lists ({ns}:vip, {ns}:alto, {ns}:comun)   tasks, oldest at the head
-- KEYS[n+1..2n]    {ns}:queued:<tier> sorted sets   task id -> sequence, while in (or just
--                                                    popped from) the list
-- KEYS[2n+1..3n]   {ns}:seq:<tier> counters         last sequence given at the tail
-- KEYS[3n+1]       {ns}:tasks hash                   task id -> task JSON, while the task is open
-- KEYS[3n+2]       {ns}:inflight hash                claim key -> claim, while a task runs
-- KEYS[3n+3]       {ns}:batch:last                   the batch most recently produced
-- KEYS[3n+4..4n+3] {ns}:arrivals:<tier> sorted sets  last sequence of a chunk -> "seq:ms": when
--                                                    Redis accepted the chunk (the aging
--                                                    policy's clock, aging.lua)
-- ARGV[1]          n
-- ARGV[2..n+1]     how many tasks go to each tier, then id1, task1, id2, task2, ... in order
--
-- Sequences grow at the tail (and requeues at the head take ever lower ones), so each list is
-- always in sequence order: a registered task whose sequence is below the head's has been
-- popped, and if nobody claims it, the reaper will find it.
-- Every check comes before the first write, so the call changes all of it or nothing.
local n = tonumber(ARGV[1])
local tasks, inflight, last_batch = KEYS[3 * n + 1], KEYS[3 * n + 2], KEYS[3 * n + 3]

-- The chunk's tasks of `tier` end at sequence `last`: record when Redis accepted them, and
-- forget the chunks whose every task has left the tier (all below its lowest open sequence).
local accepted
local function note_arrival(tier, last)
  local arrivals = KEYS[3 * n + 3 + tier]
  local lowest = redis.call('ZRANGE', KEYS[n + tier], 0, 0, 'WITHSCORES')[2]
  redis.call('ZREMRANGEBYSCORE', arrivals, '-inf', lowest and ('(' .. lowest) or '+inf')
  redis.call('ZADD', arrivals, last, last .. ':' .. accepted)
end
local first = 4 + n  -- ARGV index of the first id
for tier = 1, n do
  local kind = redis.call('TYPE', KEYS[tier]).ok
  if kind ~= 'list' and kind ~= 'none' then
    return redis.error_reply(KEYS[tier] .. ' holds a ' .. kind .. ', not a list: not touching it')
  end
  local arrivals = KEYS[3 * n + 3 + tier]
  kind = redis.call('TYPE', arrivals).ok
  if kind ~= 'zset' and kind ~= 'none' then
    return redis.error_reply(arrivals .. ' holds a ' .. kind .. ', not a sorted set')
  end
end
-- An id that is open already (queued or running) would make two tasks one: refuse the chunk.
for i = first, #ARGV, 2 do
  local id = ARGV[i]
  if redis.call('HEXISTS', tasks, id) == 1 or redis.call('HEXISTS', inflight, id) == 1 then
    return redis.error_reply('IDINUSE ' .. id)
  end
end
local step = 500  -- keeps unpack() far below Lua's stack limit
local arg = first
local clock = redis.call('TIME')
accepted = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
for tier = 1, n do
  local count = tonumber(ARGV[1 + tier])
  local seq = redis.call('INCRBY', KEYS[2 * n + tier], count) - count
  if count > 0 then note_arrival(tier, seq + count) end
  for i = 1, count, step do
    local values, scored, fields = {}, {}, {}
    for _ = i, math.min(i + step - 1, count) do
      local id, task = ARGV[arg], ARGV[arg + 1]
      arg = arg + 2
      seq = seq + 1
      values[#values + 1] = task
      scored[#scored + 1] = seq
      scored[#scored + 1] = id
      fields[#fields + 1] = id
      fields[#fields + 1] = task
    end
    redis.call('RPUSH', KEYS[tier], unpack(values))
    redis.call('ZADD', KEYS[n + tier], unpack(scored))
    redis.call('HSET', tasks, unpack(fields))
  end
end
if ARGV[n + 3] == 'first' then redis.call('SET', last_batch, ARGV[n + 2]) end
return (arg - first) / 2

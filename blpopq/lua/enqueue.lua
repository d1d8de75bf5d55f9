-- Push new tasks onto their tier lists and register them as open, all in one step.
--
-- KEYS[1..3]   tier lists ({ns}:vip, {ns}:alto, {ns}:comun)   tasks, oldest at the head
-- KEYS[4..6]   {ns}:queued:<tier> sorted sets     task id -> sequence, while in (or just
--                                                   popped from) the list
-- KEYS[7..9]   {ns}:seq:<tier> counters           last sequence given at the tail
-- KEYS[10]     {ns}:tasks hash                     task id -> task JSON, while the task is open
-- KEYS[11]     {ns}:inflight hash                  claim key -> claim, while a task runs
-- ARGV[1..3]   how many tasks go to each tier, then id1, task1, id2, task2, ... in that order
--
-- Sequences grow at the tail (and requeues at the head take ever lower ones), so each list is
-- always in sequence order: a registered task whose sequence is below the head's has been
-- popped, and if nobody claims it, the reaper will find it.
-- Every check comes before the first write, so the call changes all of it or nothing.
for tier = 1, 3 do
  local kind = redis.call('TYPE', KEYS[tier]).ok
  if kind ~= 'list' and kind ~= 'none' then
    return redis.error_reply(KEYS[tier] .. ' holds a ' .. kind .. ', not a list: not touching it')
  end
end
-- An id that is open already (queued or running) would make two tasks one: refuse the chunk.
for i = 4, #ARGV, 2 do
  local id = ARGV[i]
  if redis.call('HEXISTS', KEYS[10], id) == 1 or redis.call('HEXISTS', KEYS[11], id) == 1 then
    return redis.error_reply('IDINUSE ' .. id)
  end
end
local step = 500  -- keeps unpack() far below Lua's stack limit
local arg = 4
for tier = 1, 3 do
  local n = tonumber(ARGV[tier])
  local seq = redis.call('INCRBY', KEYS[6 + tier], n) - n
  for i = 1, n, step do
    local values, scored, fields = {}, {}, {}
    for _ = i, math.min(i + step - 1, n) do
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
    redis.call('ZADD', KEYS[3 + tier], unpack(scored))
    redis.call('HSET', KEYS[10], unpack(fields))
  end
end
return arg / 2 - 2

-- Push new tasks onto one tier and register them as open, in one step.
--
-- KEYS[1]  the tier list ({ns}:vip ...)           tasks, oldest at the head
-- KEYS[2]  {ns}:queued:<tier>  sorted set         task id -> sequence, for tasks still in the list
-- KEYS[3]  {ns}:seq:<tier>     counter            last sequence given at the tail
-- KEYS[4]  {ns}:tasks          hash               task id -> task JSON, while the task is open
-- ARGV     id1, task1, id2, task2, ...
--
-- Sequences grow at the tail (and requeues at the head take ever lower ones), so the list is
-- always in sequence order: a registered task whose sequence is below the head's has been
-- popped, and if nobody claims it, the reaper will find it.
local n = #ARGV / 2
local seq = redis.call('INCRBY', KEYS[3], n) - n
local step = 500  -- keeps unpack() far below Lua's stack limit
for i = 1, n, step do
  local values, scored, fields = {}, {}, {}
  for j = i, math.min(i + step - 1, n) do
    local id, task = ARGV[2 * j - 1], ARGV[2 * j]
    seq = seq + 1
    values[#values + 1] = task
    scored[#scored + 1] = seq
    scored[#scored + 1] = id
    fields[#fields + 1] = id
    fields[#fields + 1] = task
  end
  redis.call('RPUSH', KEYS[1], unpack(values))
  redis.call('ZADD', KEYS[2], unpack(scored))
  redis.call('HSET', KEYS[4], unpack(fields))
end
return n

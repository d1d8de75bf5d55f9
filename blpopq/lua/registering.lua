-- Shared by enqueue.lua (blpopq's producer) and submitting.lua (the enqueue any client may
-- call: the function blpopq_enqueue, or the same text for EVAL): what makes a task
-- recoverable between BLPOP and its claim. A registered task is in its tier list, in
-- {ns}:tasks (id -> the task JSON, while open) and in {ns}:queued:<tier> (id -> sequence).
--
-- Sequences grow at the tail (and requeues at the head take ever lower ones), so each list is
-- always in sequence order: a registered task whose sequence is below the head's has been
-- popped, and if nobody claims it, the reaper will find it. Callers make every check below
-- before their first write, so a call changes all of it or nothing.

-- An error reply when `list` holds something other than a list (nil when it may be pushed).
local function refuse_non_list(list)
  local kind = redis.call('TYPE', list).ok
  if kind ~= 'list' and kind ~= 'none' then
    return redis.error_reply(list .. ' holds a ' .. kind .. ', not a list: not touching it')
  end
  return nil
end

-- An error reply naming `id` when it is open already, queued or running (nil when free): two
-- tasks under one id would share one registration and one outcome.
local function refuse_open(tasks, inflight, id)
  if redis.call('HEXISTS', tasks, id) == 1 or redis.call('HEXISTS', inflight, id) == 1 then
    return redis.error_reply('IDINUSE ' .. id)
  end
  return nil
end

-- Push `count` tasks onto `list` and register them; they are args[at], args[at+1], ... as
-- id1, task1, id2, task2. Returns the index of the first argument after them, and the
-- sequence of the last.
local function register(list, queued, seq_key, tasks, count, args, at)
  local step = 500  -- keeps unpack() far below Lua's stack limit
  local seq = redis.call('INCRBY', seq_key, count) - count
  for i = 1, count, step do
    local values, scored, fields = {}, {}, {}
    for _ = i, math.min(i + step - 1, count) do
      local id, task = args[at], args[at + 1]
      at = at + 2
      seq = seq + 1
      values[#values + 1] = task
      scored[#scored + 1] = seq
      scored[#scored + 1] = id
      fields[#fields + 1] = id
      fields[#fields + 1] = task
    end
    redis.call('RPUSH', list, unpack(values))
    redis.call('ZADD', queued, unpack(scored))
    redis.call('HSET', tasks, unpack(fields))
  end
  return at, seq
end

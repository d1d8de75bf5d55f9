-- Push new tasks onto their tier lists and register them as open, all in one step.
-- (Loaded after registering.lua and clock.lua.)
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
-- ARGV[2..n+1]     how many tasks go to each tier
-- ARGV[n+2]        the batch;  ARGV[n+3]  'first' for a batch's first chunk (it records the
--                  batch in {ns}:batch:last), else 'next'
-- ARGV[n+4..]      id1, task1, id2, task2, ... in tier order, then file order
--
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
-- Only the tiers this chunk writes to are checked and touched: most small enqueues (one
-- request, a web form) name one tier, and every command here delays the BLPOP it wakes.
for tier = 1, n do
  if tonumber(ARGV[1 + tier]) > 0 then
    local refused = refuse_non_list(KEYS[tier])
    if refused then return refused end
    local arrivals = KEYS[3 * n + 3 + tier]
    local kind = redis.call('TYPE', arrivals).ok
    if kind ~= 'zset' and kind ~= 'none' then
      return redis.error_reply(arrivals .. ' holds a ' .. kind .. ', not a sorted set')
    end
  end
end
for i = first, #ARGV, 2 do
  local refused = refuse_open(tasks, inflight, ARGV[i])
  if refused then return refused end
end
local arg = first
accepted = redis_ms()
for tier = 1, n do
  local count = tonumber(ARGV[1 + tier])
  if count > 0 then
    local last
    arg, last = register(KEYS[tier], KEYS[n + tier], KEYS[2 * n + tier], tasks, count, ARGV, arg)
    note_arrival(tier, string.format('%d', last))
  end
end
if ARGV[n + 3] == 'first' then redis.call('SET', last_batch, ARGV[n + 2]) end
return (arg - first) / 2

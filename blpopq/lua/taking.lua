-- Shared by take.lua, claim.lua and finish.lua: numbering and claiming one task.
--
-- Every taking script has the same KEYS and first ARGV, for n = ARGV[1] tiers:
-- KEYS[1..n]      tier lists, highest priority first
-- KEYS[n+1..2n]   {ns}:queued:<tier> sorted sets (id -> sequence) of the same tiers
-- KEYS[2n+1]      {ns}:inflight  hash: claim key -> claim (JSON: position, worker, tier name,
--                                and the task unless it is {ns}:tasks[claim key], see below)
-- KEYS[2n+2]      {ns}:position  counter: the attention order
-- KEYS[2n+3]      {ns}:workers   sorted set: live worker -> lease expiry (ms, Redis clock)
-- KEYS[2n+4]      {ns}:epochs    hash: worker -> how many takes it has begun
-- KEYS[2n+5]      {ns}:sessions  hash: worker -> its current connection's number
-- KEYS[2n+6]      {ns}:tasks     hash: task id -> task JSON while open
-- ARGV[1] n;  ARGV[2] worker id (host:pid);  ARGV[3] the session the caller opened
-- the last n ARGV: the tier names, in the order of KEYS (claims record the name, not an
-- index, so that a record means the same whatever order or number of tiers reads it)
--
-- Replies: {'taken', tier index, task as found, position, claim key, kind}, {'empty'} when
-- every tier is empty, {'dead'} when the worker's lease ran out (it must drop what it holds
-- and exit), {'stale'} when the call comes from a connection the worker has since replaced
-- (a command delayed in a frozen Redis: refusing it keeps one claim per pop).
-- kind is 'task', 'unreadable' (not JSON, or its id not a non-empty string) or 'duplicate'
-- (its id is open already as another task): the last two are claimed under a key of their
-- own so that the worker can dead-letter them, fenced, without touching any live task. A
-- task with no id at all (a minimal task pushed by any client, README "Wire format") is a
-- 'task' claimed under a fresh id, auto.<position>: the claim key is its id from then on.

local n = tonumber(ARGV[1])
local K = {inflight = KEYS[2 * n + 1], position = KEYS[2 * n + 2], workers = KEYS[2 * n + 3],
           epochs = KEYS[2 * n + 4], sessions = KEYS[2 * n + 5], tasks = KEYS[2 * n + 6]}
local worker = ARGV[2]
local tier_names = {unpack(ARGV, #ARGV - n + 1)}  -- one table, sized once (not grown by 1s)

-- Under maxmemory with noeviction Redis refuses a script's first write that may grow memory,
-- but not the writes after a first one that does not (a removal). So every path here removes
-- before it adds (LPOP, ZREM), and a pool can still drain a Redis that is over its limit,
-- while producers (whose first write adds) are refused.

-- Nil when this worker may take now, else the reply that says why not (reads only). A
-- worker leaves {ns}:workers (declared dead, or gone) only with its session (reap.lua,
-- heartbeat.lua), and session.lua opens one only for a worker in it: so a session that
-- matches says the worker is alive too, and the common case reads one key, not two.
local function refusal()
  if redis.call('HGET', K.sessions, worker) == ARGV[3] then return nil end
  if not redis.call('ZSCORE', K.workers, worker) then return {'dead'} end
  return {'stale'}
end

-- The epoch bump tells the reaper that whatever this worker popped before is now claimed.
local function begin_take()
  redis.call('HINCRBY', K.epochs, worker, 1)
end

-- (kind, id, registered) of a popped item; id is nil for an item that is not a task and
-- for a task that names no id; registered is true when the item is {ns}:tasks[id] byte for
-- byte (enqueued by a producer that registers, and not changed since).
--
-- The common case needs no JSON decode: blpopq's producers write the id second, after "v",
-- and register each task under its id (enqueue.lua is given the id beside the task). So an
-- item that starts {"v":N,"id":"X" and is registered under X byte for byte IS task X: a
-- decode could only find X again. Anything else (another client's push, a task changed
-- since it was registered, an id with escapes) is decoded as before.
local function kind_of(raw)
  local guess = string.match(raw, '^{"v":%d+,"id":"([^"\\]+)"')
  if guess and redis.call('HGET', K.tasks, guess) == raw then
    if redis.call('HEXISTS', K.inflight, guess) == 1 then return 'duplicate', guess end
    return 'task', guess, true
  end
  local ok, task = pcall(cjson.decode, raw)
  if not ok or type(task) ~= 'table' then return 'unreadable', nil end
  if task.id == nil then return 'task', nil end
  if type(task.id) ~= 'string' or task.id == '' then return 'unreadable', nil end
  if redis.call('HEXISTS', K.inflight, task.id) == 1 then return 'duplicate', task.id end
  local registered = redis.call('HGET', K.tasks, task.id)
  if registered and registered ~= raw then return 'duplicate', task.id end
  return 'task', task.id, registered == raw
end

-- A claim record, spelled by hand with its position first (holds_claim, settling.lua, reads
-- it without a decode). The task is copied in only when it is not registered: a registered
-- task stays {ns}:tasks[key] byte for byte while it is claimed (only a settle of this claim
-- changes or removes it), so readers take it from there (records.py, Claim.from_json).
local function claim_record(position, tier, raw, registered)
  local record = '{"position":' .. string.format('%d', position) .. ',"worker":'
      .. cjson.encode(worker) .. ',"tier":' .. cjson.encode(tier_names[tier])
  if registered then return record .. '}' end
  return record .. ',"task":' .. cjson.encode(raw) .. '}'
end

-- Number `raw` (just popped from tier `tier`) and record its claim, never over another.
local function claim_item(tier, raw)
  local kind, key, registered = kind_of(raw)
  if key and kind == 'task' then redis.call('ZREM', KEYS[n + tier], key) end
  begin_take()
  local position = redis.call('INCR', K.position)
  if kind ~= 'task' then
    key = '~' .. position
    while redis.call('HEXISTS', K.inflight, key) == 1 do key = key .. '~' end
  elseif not key then
    key = 'auto.' .. position  -- unique unless another client chose it: then a suffix
    local base, k = key, 1
    while redis.call('HEXISTS', K.inflight, key) == 1 or redis.call('HEXISTS', K.tasks, key) == 1 do
      key, k = base .. '.' .. k, k + 1
    end
  end
  redis.call('HSET', K.inflight, key, claim_record(position, tier, raw, registered))
  return {'taken', tier, raw, position, key, kind}
end

-- Pop the first task of the highest non-empty tier and claim it.
local function take_next()
  for tier = 1, n do
    local raw = redis.call('LPOP', KEYS[tier])
    if raw then return claim_item(tier, raw) end
  end
  begin_take()
  return {'empty'}
end

-- End waiting tasks as `cancelled` results, each only if it is still waiting in its tier list.
-- (Loaded after settling.lua, for close_with_result.)
--
-- For n = ARGV[1] tiers, highest priority first:
-- KEYS[1..n]      tier lists                  tasks, oldest at the head
-- KEYS[n+1..2n]   {ns}:queued:<tier>          id -> sequence of registered tasks
-- KEYS[2n+1]      {ns}:tasks                  id -> task JSON while open
-- KEYS[2n+2]      {ns}:inflight               claim key -> claim while a task runs
-- KEYS[2n+3]      {ns}:results                the results list
-- KEYS[2n+4]      {ns}:results:written        counter of every result ever pushed
-- KEYS[2n+5]      {ns}:position               the attention counter
-- ARGV[1]         n
-- ARGV[2..n+1]    the tier names, in the order of KEYS
-- ARGV[n+2]       how many results to keep, newest first (0: keep all)
-- then, per task: tier name, id, task JSON exactly as registered, result JSON without its
-- leading `{"position":N` (it begins with `,`): the position is taken here, from the
-- attention counter, so a cancelled task is numbered when it is cancelled, like any outcome.
--
-- A task is cancelled only when it is registered with exactly this JSON, holds no claim, and
-- LREM finds it in its list. One popped by BLPOP but not yet claimed is in no list: it is left
-- to its worker (or the reaper), and runs. LREM comes first, so under maxmemory with
-- noeviction the script removes before it adds. Returns how many were cancelled.
local n = tonumber(ARGV[1])
local tasks, inflight = KEYS[2 * n + 1], KEYS[2 * n + 2]
local results, written, position = KEYS[2 * n + 3], KEYS[2 * n + 4], KEYS[2 * n + 5]
local tier_of = {}
for i = 1, n do tier_of[ARGV[1 + i]] = i end
local keep = ARGV[n + 2]
local cancelled = 0
for i = n + 3, #ARGV, 4 do
  local tier, id, task, tail = tier_of[ARGV[i]], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  if tier and redis.call('HGET', tasks, id) == task
      and redis.call('HEXISTS', inflight, id) == 0
      and redis.call('LREM', KEYS[tier], 1, task) == 1 then
    redis.call('ZREM', KEYS[n + tier], id)
    local result = '{"position":' .. redis.call('INCR', position) .. tail
    close_with_result(inflight, tasks, results, written, id, result, keep)
    cancelled = cancelled + 1
  end
end
return cancelled

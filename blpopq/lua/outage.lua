-- Shared by heartbeat.lua and reap.lua: leases do not count time that Redis served nobody.
--
-- Every beat and every scheduled reaper pass records when a worker last reached Redis in
-- {ns}:alive_at. While a pool lives, that is never longer ago than one beat interval plus one
-- reaper period (`gap`, ms). When it is, Redis was frozen, BUSY with another client's script
-- or loading: no worker could renew its lease, so before anything is judged every lease is
-- made to last at least one more gap, time for a live worker to beat again. A Redis outage is
-- never a worker's death, nor a death of the healthy task it holds; a worker that really died
-- meanwhile is declared dead one gap later than it would have been.
--
-- GETDEL first, a removal: under maxmemory Redis refuses a script's first write only when it
-- may grow memory, so a pool over the limit still renews its leases (see taking.lua).
local function forgive_outage(workers, alive_at, now, gap)
  local last = tonumber(redis.call('GETDEL', alive_at) or '')
  redis.call('SET', alive_at, now)
  if last and now - last > gap then
    for _, worker in ipairs(redis.call('ZRANGE', workers, 0, -1)) do
      redis.call('ZADD', workers, 'GT', now + gap, worker)
    end
  end
end

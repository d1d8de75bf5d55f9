-- Shared by every script that reads Redis's clock: leases, the reaper, the policy record,
-- the aging policy's arrivals. One clock for all hosts, so skew between them cannot matter.

-- Milliseconds since the epoch on Redis's clock (TIME).
local function redis_ms()
  local now = redis.call('TIME')
  return tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
end

-- The aging policy's take: a waiting task of an aging tier whose wait passed its tier's limit
-- is overdue, and the oldest overdue head goes first; with none overdue, strict priority.
-- Loaded after taking.lua and clock.lua, and before take.lua or finish.lua, whose
-- take_next() it replaces.
-- Only heads are compared: within a tier list order always holds.
--
-- After the KEYS and ARGV of the script it serves (taking.lua's, then its own), at the end:
-- KEYS[#KEYS-2n+1 .. #KEYS-n]  {ns}:arrivals:<tier> (enqueue.lua: when Redis accepted each chunk)
-- KEYS[#KEYS-n+1 .. #KEYS]     {ns}:seen:<tier>: "sha1:ms", when a head that no chunk recorded
--                              (pushed by other code, or queued before arrivals were kept)
--                              was first seen
-- ARGV[#ARGV-2n+1 .. #ARGV-n]  each tier's limit in ms, -1 for a tier that never ages (then
--                              the n tier names, as taking.lua reads them)
local strict_take_next = take_next
local arrivals_at, limits_at = #KEYS - 2 * n, #ARGV - 2 * n

-- When the head `raw` of `tier` arrived, by its chunk's record; nil when none covers it.
local function recorded_arrival(tier, raw)
  local ok, task = pcall(cjson.decode, raw)
  if not ok or type(task) ~= 'table' or type(task.id) ~= 'string' then return nil end
  local seq = redis.call('ZSCORE', KEYS[n + tier], task.id)
  if not seq then return nil end
  local entry = redis.call('ZRANGEBYSCORE', KEYS[arrivals_at + tier], seq, '+inf', 'LIMIT', 0, 1)[1]
  return entry and tonumber(string.match(entry, ':(%d+)$'))
end

-- When the head of `tier` arrived, or was first seen (then `first_seen` gets the record to
-- write once something was removed: see "removes before it adds" in taking.lua).
local function head_arrival(tier, now, first_seen)
  local raw = redis.call('LINDEX', KEYS[tier], 0)
  if not raw then return nil end
  local at = recorded_arrival(tier, raw)
  if at then return at end
  local digest = redis.sha1hex(raw)
  local seen = redis.call('GET', KEYS[arrivals_at + n + tier])
  if seen and string.sub(seen, 1, 40) == digest then return tonumber(string.sub(seen, 42)) end
  first_seen[tier] = digest .. ':' .. now
  return now
end

local function take_next()
  local now, first_seen = redis_ms(), {}
  local oldest, oldest_at = nil, nil
  for tier = 1, n do
    local limit = tonumber(ARGV[limits_at + tier])
    if limit >= 0 then
      local at = head_arrival(tier, now, first_seen)
      if at and now - at > limit and (oldest_at == nil or at < oldest_at) then
        oldest, oldest_at = tier, at
      end
    end
  end
  local reply
  if oldest then
    reply = claim_item(oldest, redis.call('LPOP', KEYS[oldest]))
  else
    reply = strict_take_next()
  end
  for tier, record in pairs(first_seen) do
    redis.call('SET', KEYS[arrivals_at + n + tier], record)
  end
  return reply
end

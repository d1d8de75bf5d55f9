-- Shared by take.lua and settle.lua: protocol.py puts this text in front of theirs when it
-- loads them, so the fence and the result write are spelled once.

-- True when task `id` is still claimed by the take numbered `position`: every take numbers
-- anew, so a stale or repeated settle finds another number, or no claim at all.
local function holds_claim(inflight, id, position)
  local claim = redis.call('HGET', inflight, id)
  return claim ~= false and cjson.decode(claim).position == tonumber(position)
end

-- End the claim on `id` with `result` pushed onto `results` and the task closed. `written`
-- counts every result ever pushed, so a reader's index of the i-th listed result is
-- written - LLEN + i however much was trimmed; a missing counter beside a non-empty list
-- (results written before retention existed) starts at the list's length, so that stays
-- true. Then keep only the newest `keep` results (0: keep all).
local function close_with_result(inflight, tasks, results, written, id, result, keep)
  redis.call('HDEL', inflight, id)
  redis.call('HDEL', tasks, id)
  local length = redis.call('RPUSH', results, result)
  if redis.call('INCR', written) == 1 then redis.call('SET', written, length) end
  keep = tonumber(keep) or 0
  if keep > 0 and length > keep then redis.call('LTRIM', results, -keep, -1) end
end


-- Shared by the scripts that take or settle: protocol.py puts this text in front of theirs
-- when it loads them, so the fence and the result write are spelled once.

-- The claim record of `id`, decoded, or nil when there is none or it is not one of ours
-- (any bytes can be written into a hash: a bad record must never make a script fail).
local function read_claim(inflight, id)
  local raw = redis.call('HGET', inflight, id)
  if not raw then return nil end
  local ok, claim = pcall(cjson.decode, raw)
  if ok and type(claim) == 'table' and type(claim.position) == 'number'
      and type(claim.worker) == 'string' then
    return claim
  end
  return nil
end

-- True when task `id` is still claimed by the take numbered `position`: every take numbers
-- anew, so a stale or repeated settle finds another number, or no claim at all. The taking
-- scripts write the position first (taking.lua, claim_record): read without a decode;
-- records written otherwise (older versions, reap.lua's orphans) are decoded.
local function holds_claim(inflight, id, position)
  local raw = redis.call('HGET', inflight, id)
  if not raw then return false end
  local recorded = string.match(raw, '^{"position":(%d+),"worker":"')
  if recorded then return tonumber(recorded) == tonumber(position) end
  local claim = read_claim(inflight, id)
  return claim ~= nil and claim.position == tonumber(position)
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

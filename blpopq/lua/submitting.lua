-- The enqueue any Redis client may call, lossless like blpopq's own producer's: shared by
-- library.lua (the function blpopq_enqueue, Redis >= 7) and submit.lua (the same for EVAL,
-- Redis 6.2). (Loaded after registering.lua.) The calling convention is a public contract
-- (README "Wire format"): arguments may be added at the end, never changed.
--
-- keys[1]  the tier list the tasks go to        {ns}:<tier>
-- keys[2]  that tier's sorted set               {ns}:queued:<tier>
-- keys[3]  that tier's sequence counter         {ns}:seq:<tier>
-- keys[4]  {ns}:tasks                           keys[5]  {ns}:inflight
-- args[1]  the tier's name (vip, alto, comun)
-- args[2..] tasks, each a JSON object (README "Wire format": client, op, prev, difficulty,
--          and count or nonce; anything else is optional)
--
-- Fills in what a task leaves out: `id` (auto.<tier>.<its sequence in the tier>: unique in
-- the namespace), `tier` (args[1]) and `enqueued_at` (Redis's clock, Unix seconds), each put
-- in front of the task's own fields; the task's text is otherwise kept byte for byte (no
-- re-encoding: a 64-bit nonce stays exact). Checks only what registration needs: each task
-- a JSON object, its id (if any) a non-empty string not open already nor twice in the call,
-- its tier (if any) args[1]; the rest is the worker's to check (a bad field: a dead letter
-- naming it). Any refusal refuses the whole call: `BADTASK <k>: ...` for the k-th task, or
-- `IDINUSE <id>`. Returns the ids, in order.

local function submit_refusal(k, why)
  return redis.error_reply('BADTASK ' .. k .. ': ' .. why)
end

-- The text of `raw` with `fields` (already JSON, "name":value, ...) first among its members.
local function with_fields(raw, fields)
  if #fields == 0 then return raw end
  local brace = string.find(raw, '{', 1, true)
  local rest = string.sub(raw, brace + 1)
  local sep = string.find(rest, '^%s*}') and '' or ','
  return '{' .. table.concat(fields, ',') .. sep .. rest
end

-- (id, task text with the missing fields filled in) of the k-th task, or nil and a refusal.
local function completed(raw, k, tier, seq, now)
  if not string.find(raw, '^%s*{') then return nil, submit_refusal(k, 'not a JSON object') end
  local ok, task = pcall(cjson.decode, raw)
  if not ok or type(task) ~= 'table' then return nil, submit_refusal(k, 'not a JSON object') end
  local fields, id = {}, task.id
  if id == nil then
    id = 'auto.' .. tier .. '.' .. seq
    fields[#fields + 1] = '"id":' .. cjson.encode(id)
  elseif type(id) ~= 'string' or id == '' then
    return nil, submit_refusal(k, "field 'id' is not a non-empty string")
  end
  if task.tier == nil then
    fields[#fields + 1] = '"tier":' .. cjson.encode(tier)
  elseif task.tier ~= tier then
    return nil, submit_refusal(k, "field 'tier' is not " .. tier .. ', the tier it goes to')
  end
  if task.enqueued_at == nil then fields[#fields + 1] = '"enqueued_at":' .. now end
  return id, with_fields(raw, fields)
end

local function submit(keys, args)
  local list, queued, seq_key, tasks, inflight = keys[1], keys[2], keys[3], keys[4], keys[5]
  local tier = args[1]
  if #keys ~= 5 or type(tier) ~= 'string' or tier == '' then
    return redis.error_reply('BADCALL give 5 keys (tier list, queued, seq, tasks, inflight), '
                             .. 'then the tier name, then the tasks')
  end
  local refused = refuse_non_list(list)
  if refused then return refused end
  local t = redis.call('TIME')
  local now = t[1] .. '.' .. string.format('%06d', tonumber(t[2]))
  local seq = tonumber(redis.call('GET', seq_key) or '0')
  local pairs_, ids, seen = {}, {}, {}
  for k = 2, #args do
    local id, task = completed(args[k], k - 1, tier, seq + k - 1, now)
    if not id then return task end
    if seen[id] then return submit_refusal(k - 1, 'id ' .. id .. ' twice in one call') end
    refused = refuse_open(tasks, inflight, id)
    if refused then return refused end
    seen[id] = true
    ids[#ids + 1] = id
    pairs_[#pairs_ + 1] = id
    pairs_[#pairs_ + 1] = task
  end
  if #ids > 0 then register(list, queued, seq_key, tasks, #ids, pairs_, 1) end
  return ids
end

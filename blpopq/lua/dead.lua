-- Shared by the scripts that dead-letter: every letter is numbered as it is pushed.
--
-- `dead:written` counts the letters ever pushed; a letter's number (`seq`) is written into
-- its JSON as its first field. `blpopq dead purge|requeue` remove letters from the middle of
-- {ns}:dead, so list positions shift under a reader; numbers do not, and letters stay in
-- number order, so the letters numbered above c are always among the last written - c
-- (read_dead.lua). A missing counter beside letters pushed before numbering existed starts
-- at the list's length, so that stays true for them too.
local function push_dead(dead, written, letter)
  local seq = redis.call('INCR', written)
  if seq == 1 then
    seq = redis.call('LLEN', dead) + 1
    redis.call('SET', written, seq)
  end
  redis.call('RPUSH', dead, '{"seq":' .. seq .. ',' .. string.sub(letter, 2))
  return seq
end

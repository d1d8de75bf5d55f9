-- Write the result of the task this worker just finished, then take the next: one round trip
-- per busy task. (Loaded after settling.lua and taking.lua, whose KEYS and ARGV[1..3] come
-- first.)
-- KEYS[2n+7]  {ns}:results          KEYS[2n+8]  {ns}:results:written (results ever pushed)
-- ARGV[4]     the finished task's claim key   ARGV[5]  its claim's position
-- ARGV[6]     the result JSON                 ARGV[7]  how many results to keep (0: all)
--
-- Returns {settled, take reply...}: settled is 1 (written) or 0 (fenced off: the claim was
-- settled already or belongs to a newer take). The result is written even when the take is
-- then refused: it was earned under a claim that was still ours.
local settled = 0
if holds_claim(K.inflight, ARGV[4], ARGV[5]) then
  close_with_result(K.inflight, K.tasks, KEYS[2 * n + 7], KEYS[2 * n + 8],
                    ARGV[4], ARGV[6], ARGV[7])
  settled = 1
end
local reply = refusal() or take_next()
table.insert(reply, 1, settled)
return reply

-- Write a claimed task's result and end the claim, only if the claim is still ours.
-- (Loaded after settling.lua.)
--
-- KEYS[1]  {ns}:inflight   KEYS[2]  {ns}:tasks   KEYS[3]  {ns}:results
-- KEYS[4]  {ns}:results:written: a counter of every result ever pushed, never lowered
-- ARGV[1]  claim key   ARGV[2]  the claim's position   ARGV[3]  result JSON
-- ARGV[4]  how many results to keep, newest first (0: keep all)
--
-- Returns 1 when written, 0 when fenced off: a stale or repeated settle never adds a second
-- result for one task (nor trims).
if not holds_claim(KEYS[1], ARGV[1], ARGV[2]) then return 0 end
close_with_result(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1], ARGV[3], ARGV[4])
return 1

-- Claim a task that BLPOP handed over. (Loaded after taking.lua: KEYS and ARGV[1..3] are
-- described there.)
-- ARGV[4]  the 1-based index of the tier the task came from
-- ARGV[5]  the task exactly as BLPOP returned it
return refusal() or claim_item(tonumber(ARGV[4]), ARGV[5])

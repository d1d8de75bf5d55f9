-- Take one task by priority and number it, atomically, so the attention order is the take
-- order. (Loaded after taking.lua: KEYS and ARGV[1..3] are described there.)
return refusal() or take_next()

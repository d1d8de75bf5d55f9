-- The function library `blpopq` (Redis >= 7): FCALL blpopq_enqueue 5 <keys> <tier> <task>...
-- (Loaded after registering.lua and submitting.lua, where the keys and arguments are
-- described; protocol.py puts the `#!lua name=blpopq` line first.) The daemon loads it at
-- start (FUNCTION LOAD REPLACE) and each worker again if it is missing when it connects (a
-- Redis restarted without its data has no functions); `blpopq schema library` prints it.
redis.register_function('blpopq_enqueue', function(keys, args) return submit(keys, args) end)

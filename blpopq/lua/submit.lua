-- Enqueue tasks from any client with EVAL (Redis 6.2; on Redis >= 7 prefer FCALL
-- blpopq_enqueue, the same code). (Loaded after registering.lua and submitting.lua, where
-- KEYS and ARGV are described.) `blpopq schema script` prints this text whole.
return submit(KEYS, ARGV)

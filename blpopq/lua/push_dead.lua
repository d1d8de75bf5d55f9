-- Push a dead letter that no claim fences (tools and tests; workers settle with
-- settle_dead.lua). (Loaded after dead.lua.)
--
-- KEYS[1]  {ns}:dead   KEYS[2]  {ns}:dead:written
-- ARGV[1]  dead-letter JSON (an object)
return push_dead(KEYS[1], KEYS[2], ARGV[1])

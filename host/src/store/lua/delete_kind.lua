#!lua
-- No flags: refused (503) when Redis is full, before it writes anything.
-- Unregisters a kind; its current version and its whole history are retired (collected once no unfinished
-- job needs them). A pause of the kind is lifted, so its jobs already queued still run (on their version).
-- KEYS: 1 kinds, 2 versions, 3 the kind's history, 4 paused kinds
-- ARGV: 1 name, 2 now (ms)
-- Returns 1 if the kind existed.
local old = redis.call('HGET', KEYS[1], ARGV[1])
if not old then
  return 0
end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[2], cjson.decode(old).version)
for _, version in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do
  redis.call('ZADD', KEYS[2], ARGV[2], version)
end
redis.call('DEL', KEYS[3])
redis.call('SREM', KEYS[4], ARGV[1])
return 1

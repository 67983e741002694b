#!lua
-- No flags: refused (503) when Redis is full, before it writes anything.
-- Removes a tenant and its key hash together.
-- KEYS: 1 tenants, 2 api keys, 3 running limits
-- ARGV: 1 name
local entry = redis.call('HGET', KEYS[1], ARGV[1])
if not entry then
  return 0
end
redis.call('HDEL', KEYS[2], cjson.decode(entry)['key_hash'])
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
return 1

#!lua
-- No flags: refused (503) when Redis is full, before it writes anything.
-- Gives a tenant a new key hash; the old one stays valid until the deadline (retiring keys), or goes at
-- once if the deadline has passed.
-- KEYS: 1 tenants, 2 api keys, 3 retiring keys
-- ARGV: 1 name, 2 new key hash, 3 deadline of the old key (ms), 4 now (ms)
local entry = redis.call('HGET', KEYS[1], ARGV[1])
if not entry then
  return 0
end
local tenant = cjson.decode(entry)
tenant['id'] = tenant['id'] or ARGV[1]
local old = tenant['key_hash']
if tonumber(ARGV[3]) <= tonumber(ARGV[4]) then
  redis.call('HDEL', KEYS[2], old)
  redis.call('ZREM', KEYS[3], old)
else
  redis.call('ZADD', KEYS[3], ARGV[3], old)
end
tenant['key_hash'] = ARGV[2]
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(tenant))
redis.call('HSET', KEYS[2], ARGV[2], tenant['id'])
return 1

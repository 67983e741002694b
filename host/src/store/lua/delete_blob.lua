#!lua flags=allow-oom
-- allow-oom: deleting frees memory, so it must work when Redis is full.
-- Deletes a tenant's blob and releases its bytes at once (not at its expiry).
-- KEYS: 1 blob bytes, 2 blob media type, 3 the tenant's holds, 4 bytes held per tenant
-- ARGV: 1 tenant, 2 the hold member without its size (`blob:<hex>/`)
-- Returns 1 if the blob existed.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
local size = redis.call('STRLEN', KEYS[1])
redis.call('DEL', KEYS[1], KEYS[2])
if redis.call('ZREM', KEYS[3], ARGV[2] .. size) == 1 then
  if redis.call('HINCRBY', KEYS[4], ARGV[1], -size) <= 0 then
    redis.call('HDEL', KEYS[4], ARGV[1])
  end
end
return 1

#!lua
-- No flags: refused (503) when Redis is full, before it writes anything.
-- Stores a tenant's blob by its content hash, once: the same bytes again only push its expiry out. Its
-- bytes count against the tenant's byte quota until the sweep sees its hold (`held:<tenant>`, member
-- `blob:<hex>/<size>`, scored by expiry) run out, or it is deleted.
-- KEYS: 1 blob bytes, 2 blob media type, 3 the tenant's holds, 4 bytes held per tenant
-- ARGV: 1 tenant, 2 bytes, 3 media type, 4 ttl (ms), 5 expiry (ms since the epoch), 6 hold member,
--       7 max bytes held (0: no limit)
-- Returns 'new', 'existing', or 'quota:bytes:<limit>' / 'quota:too-big:<limit>'.
local size = string.len(ARGV[2])
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4])
  redis.call('ZADD', KEYS[3], ARGV[5], ARGV[6])
  return 'existing'
end
-- A hold left from an expired copy that the sweep has not released yet is still counted: not twice.
local counted = redis.call('ZSCORE', KEYS[3], ARGV[6])
local max_bytes = tonumber(ARGV[7])
if max_bytes > 0 and not counted then
  if size > max_bytes then
    return 'quota:too-big:' .. max_bytes
  end
  if tonumber(redis.call('HGET', KEYS[4], ARGV[1]) or '0') + size > max_bytes then
    return 'quota:bytes:' .. max_bytes
  end
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[4])
redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4])
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[6])
if not counted then
  redis.call('HINCRBY', KEYS[4], ARGV[1], size)
end
return 'new'

#!lua flags=allow-oom
-- allow-oom: it only removes entries, which is what a full Redis needs.
-- Bounded housekeeping, run by workers every minute: removes listing-index entries whose job document has
-- expired (listing prunes them too, but only where someone lists), releases the bytes of a tenant's finished
-- jobs whose keys have expired (`held:<tenant>`, scored by expiry; keys that expire decrement nothing by
-- themselves), and forgets tenants whose index and held set are empty.
-- Ids are UUIDv7, so the index's lex order is submit order and the oldest entries, checked first, are the
-- ones that expire first.
-- KEYS: 1 indexed tenants, 2 bytes held per tenant
-- ARGV: 1 SSCAN cursor, 2 key prefix, 3 entries checked per tenant, 4 now (ms)
-- Returns {next cursor ('0' when the pass is over), entries removed}.
local prefix = ARGV[2]
local per_tenant = tonumber(ARGV[3])
local scan = redis.call('SSCAN', KEYS[1], ARGV[1], 'COUNT', 20)
local removed = 0
for _, tenant in ipairs(scan[2]) do
  local index = prefix .. ':jobs:' .. tenant
  for _, id in ipairs(redis.call('ZRANGE', index, 0, per_tenant - 1)) do
    if redis.call('EXISTS', prefix .. ':job:' .. tenant .. ':' .. id) == 0 then
      redis.call('ZREM', index, id)
      removed = removed + 1
    end
  end
  local held = prefix .. ':held:' .. tenant
  local released = 0
  for _, entry in ipairs(redis.call('ZRANGEBYSCORE', held, '-inf', ARGV[4], 'LIMIT', 0, per_tenant)) do
    released = released + tonumber(string.match(entry, '/(%d+)$'))
    redis.call('ZREM', held, entry)
  end
  if released > 0 and redis.call('HINCRBY', KEYS[2], tenant, -released) <= 0 then
    redis.call('HDEL', KEYS[2], tenant)
  end
  if redis.call('ZCARD', index) == 0 and redis.call('ZCARD', held) == 0 then
    redis.call('SREM', KEYS[1], tenant)
  end
end
return {scan[1], removed}

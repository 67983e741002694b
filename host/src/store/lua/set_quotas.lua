#!lua
-- No flags: refused (503) when Redis is full, before it writes anything.
-- Sets a tenant's own quotas in its entry, and its running limits (in all and per kind) where the claim
-- script reads them.
-- KEYS: 1 tenants, 2 running limits
-- ARGV: 1 name, 2 quotas JSON, 3 running limit ('' for the default), 4 key prefix,
--       5.. pairs of kind and the jobs of it the tenant may run at once (all earlier ones are replaced)
local entry = redis.call('HGET', KEYS[1], ARGV[1])
if not entry then
  return 0
end
local tenant = cjson.decode(entry)
local id = tenant['id'] or ARGV[1]
tenant['quotas'] = cjson.decode(ARGV[2])
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(tenant))
if ARGV[3] == '' then
  redis.call('HDEL', KEYS[2], id)
else
  redis.call('HSET', KEYS[2], id, ARGV[3])
end
local per_kind = ARGV[4] .. ':limits:kind-running:' .. id
redis.call('DEL', per_kind)
for i = 5, #ARGV, 2 do
  redis.call('HSET', per_kind, ARGV[i], ARGV[i + 1])
end
return 1

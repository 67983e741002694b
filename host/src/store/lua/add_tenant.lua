#!lua
-- No flags: refused (503) when Redis is full, before it writes anything.
-- Adds a tenant, its key hash and its running limits (in all and per kind) together, unless the name is taken.
-- KEYS: 1 tenants, 2 api keys, 3 running limits, 4 the tenant's per-kind running limits
-- ARGV: 1 name, 2 key hash, 3 tenant entry JSON, 4 running limit ('' for the default), 5 tenant id,
--       6.. pairs of kind and the jobs of it the tenant may run at once
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[3]) == 0 then
  return 0
end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[5])
if ARGV[4] ~= '' then
  redis.call('HSET', KEYS[3], ARGV[5], ARGV[4])
end
for i = 6, #ARGV, 2 do
  redis.call('HSET', KEYS[4], ARGV[i], ARGV[i + 1])
end
return 1

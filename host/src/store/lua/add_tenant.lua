#!lua
-- No flags: refused (503) when Redis is full, before it writes anything.
-- Adds a tenant, its key hash and its running limit together, unless the name is taken.
-- KEYS: 1 tenants, 2 api keys, 3 running limits
-- ARGV: 1 name, 2 key hash, 3 tenant entry JSON, 4 running limit ('' for the default), 5 tenant id
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[3]) == 0 then
  return 0
end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[5])
if ARGV[4] ~= '' then
  redis.call('HSET', KEYS[3], ARGV[5], ARGV[4])
end
return 1

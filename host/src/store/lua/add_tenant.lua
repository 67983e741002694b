-- Adds a tenant and its key hash together, unless the name is taken.
-- KEYS: 1 tenants, 2 api keys
-- ARGV: 1 name, 2 key hash, 3 tenant entry JSON
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[3]) == 0 then
  return 0
end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[1])
return 1

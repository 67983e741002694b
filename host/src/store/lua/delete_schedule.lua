#!lua flags=allow-oom
-- allow-oom: deleting a schedule frees memory, so it must work when Redis is full.
-- Deletes a recurring schedule: it leaves the due zset (no process fires it again: their claim checks
-- the zset), its definition and input copy go, and the bytes they held are released. Jobs it made stay.
-- KEYS: 1 schedules zset, 2 the schedule's hash, 3 the tenant's schedule ids, 4 the schedule's input copy,
--       5 bytes held per tenant
-- ARGV: 1 member (`<tenant>/<id>`), 2 tenant, 3 schedule id
-- Returns 1, or 0 if there was no such schedule.
local held = redis.call('HGET', KEYS[2], 'bytes')
if not held then
  return 0
end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('SREM', KEYS[3], ARGV[3])
redis.call('DEL', KEYS[2], KEYS[4])
if redis.call('HINCRBY', KEYS[5], ARGV[2], -tonumber(held)) <= 0 then
  redis.call('HDEL', KEYS[5], ARGV[2])
end
return 1

#!lua
-- No flags: refused (503) when Redis is full, before it writes anything.
-- Adds a recurring schedule: its definition, its own copy of its input (copied here from a blob or a
-- finished job's result, atomically with the check that the source exists) and its place in the due zset.
-- The copy and the params are held against the tenant's byte quota for the schedule's life, so no TTL of
-- the source can break it; `delete_schedule.lua` releases them.
-- KEYS: 1 schedules zset, 2 the schedule's hash, 3 the tenant's schedule ids, 4 the schedule's input copy,
--       5 bytes held per tenant
-- ARGV: 1 member (`<tenant>/<id>`), 2 first due time (ms), 3 max schedules per tenant (0: no limit),
--       4 the key to copy the input from ('' for none), 5 max bytes held (0: no limit), 6 the kind's largest
--       input (0: no limit), 7 tenant, 8 schedule id, 9 the params' size, 10.. field, value pairs of the hash
-- Returns 'ok', 'limit:<n>', 'ref:missing', 'ref:too-big:<n>' or 'quota:bytes:<n>' (nothing written).
local max_schedules = tonumber(ARGV[3])
if max_schedules > 0 and redis.call('SCARD', KEYS[3]) >= max_schedules then
  return 'limit:' .. max_schedules
end
local size = tonumber(ARGV[9])
if ARGV[4] ~= '' then
  if redis.call('EXISTS', ARGV[4]) == 0 then
    return 'ref:missing'
  end
  local input_size = redis.call('STRLEN', ARGV[4])
  local max_input = tonumber(ARGV[6])
  if max_input > 0 and input_size > max_input then
    return 'ref:too-big:' .. max_input
  end
  size = size + input_size
end
local max_bytes = tonumber(ARGV[5])
if max_bytes > 0 and tonumber(redis.call('HGET', KEYS[5], ARGV[7]) or '0') + size > max_bytes then
  return 'quota:bytes:' .. max_bytes
end
if ARGV[4] ~= '' then
  -- COPY keeps the source's expiry; the copy lives as long as the schedule instead.
  redis.call('COPY', ARGV[4], KEYS[4], 'REPLACE')
  redis.call('PERSIST', KEYS[4])
end
for i = 10, #ARGV, 2 do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
end
redis.call('HSET', KEYS[2], 'bytes', size, 'next_at', ARGV[2])
redis.call('HINCRBY', KEYS[5], ARGV[7], size)
redis.call('SADD', KEYS[3], ARGV[8])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
return 'ok'

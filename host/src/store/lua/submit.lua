-- Accepts a job: document, input, listing entry and queue entry in one atomic step, then wakes a worker.
-- With an Idempotency-Key (KEYS[9]), a key already used for the same payload returns that job instead, and
-- one used for another payload refuses; the key is kept for the job TTL (the idempotency window).
-- KEYS: 1 job, 2 input, 3 index, 4 queue, 5 ready ring, 6 ready set, 7 wake, 8 indexed tenants,
--       [9 idempotency key]
-- ARGV: 1 id, 2 tenant, 3 kind, 4 version, 5 params, 6 created_at, 7 max_attempts, 8 has_input, 9 input,
--       10 key prefix, [11 payload hash, 12 idempotency window (ms)]
-- Returns 'new', 'same:<id>' (the key's job, same payload) or 'reused:<id>' (the key's job, other payload).
if KEYS[9] then
  local seen = redis.call('GET', KEYS[9])
  if seen then
    local id, hash = string.match(seen, '^(%S+) (%S+)$')
    -- A key outliving its job (it should not: the job lasts longer) is free again.
    if id and redis.call('EXISTS', ARGV[10] .. ':job:' .. ARGV[2] .. ':' .. id) == 1 then
      if hash == ARGV[11] then
        return 'same:' .. id
      end
      return 'reused:' .. id
    end
  end
  redis.call('SET', KEYS[9], ARGV[1] .. ' ' .. ARGV[11], 'PX', ARGV[12])
end
redis.call('HSET', KEYS[1],
  'id', ARGV[1], 'tenant', ARGV[2], 'kind', ARGV[3], 'version', ARGV[4], 'params', ARGV[5],
  'status', 'queued', 'progress', 0, 'attempts', 0, 'max_attempts', ARGV[7], 'created_at', ARGV[6])
if ARGV[8] == '1' then
  redis.call('SET', KEYS[2], ARGV[9])
end
redis.call('ZADD', KEYS[3], 0, ARGV[1])
redis.call('SADD', KEYS[8], ARGV[2])
redis.call('LPUSH', KEYS[4], ARGV[1])
if redis.call('SADD', KEYS[6], ARGV[2]) == 1 then
  redis.call('RPUSH', KEYS[5], ARGV[2])
end
redis.call('LPUSH', KEYS[7], 1)
redis.call('LTRIM', KEYS[7], 0, 63)
return 'new'

-- Accepts a job: document, input, listing entry and queue entry in one atomic step, then wakes a worker.
-- KEYS: 1 job, 2 input, 3 index, 4 queue, 5 ready ring, 6 ready set, 7 wake
-- ARGV: 1 id, 2 tenant, 3 kind, 4 version, 5 params, 6 created_at, 7 max_attempts, 8 has_input, 9 input
redis.call('HSET', KEYS[1],
  'id', ARGV[1], 'tenant', ARGV[2], 'kind', ARGV[3], 'version', ARGV[4], 'params', ARGV[5],
  'status', 'queued', 'progress', 0, 'attempts', 0, 'max_attempts', ARGV[7], 'created_at', ARGV[6])
if ARGV[8] == '1' then
  redis.call('SET', KEYS[2], ARGV[9])
end
redis.call('ZADD', KEYS[3], 0, ARGV[1])
redis.call('LPUSH', KEYS[4], ARGV[1])
if redis.call('SADD', KEYS[6], ARGV[2]) == 1 then
  redis.call('RPUSH', KEYS[5], ARGV[2])
end
redis.call('LPUSH', KEYS[7], 1)
redis.call('LTRIM', KEYS[7], 0, 63)
return 1

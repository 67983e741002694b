#!lua flags=allow-oom
-- allow-oom: a running job must keep its lease when Redis is full; this writes one score and one field.
-- Extends a running job's lease and stores its progress. Returns 0 when the lease is no longer ours
-- (the job was cancelled, or given to another worker after our lease ran out): the worker must stop.
-- KEYS: 1 job, 2 leases
-- ARGV: 1 member, 2 lease, 3 new deadline (ms), 4 progress ('' for unchanged), 5 the changes channel
if redis.call('HGET', KEYS[1], 'lease') ~= ARGV[2] then
  return 0
end
redis.call('ZADD', KEYS[2], 'XX', ARGV[3], ARGV[1])
if ARGV[4] ~= '' then
  redis.call('HSET', KEYS[1], 'progress', ARGV[4])
  redis.call('PUBLISH', ARGV[5], ARGV[1])
end
return 1

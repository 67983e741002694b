#!lua flags=allow-oom
-- allow-oom: accepted work must finish when Redis is full (as finish.lua).
-- Records a pipeline step, only while the caller holds the job's lease: the steps' states (shown in the
-- job document) and, for a step that succeeded, its output, which the next step takes and a retry
-- starts from (kept for the job TTL).
-- KEYS: 1 job, 2 the step's output
-- ARGV: 1 lease, 2 steps JSON, 3 output ('' for none), 4 ttl (ms), 5 the changes channel, 6 member
-- Returns 1, or 0 when the lease is gone.
if redis.call('HGET', KEYS[1], 'lease') ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], 'steps', ARGV[2])
if ARGV[3] ~= '' then
  redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4])
end
redis.call('PUBLISH', ARGV[5], ARGV[6])
return 1

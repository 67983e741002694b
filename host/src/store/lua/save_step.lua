#!lua flags=allow-oom
-- allow-oom: accepted work must finish when Redis is full (as finish.lua).
-- Records a pipeline's steps, only while the caller holds the job's lease: the steps' states (shown in
-- the job document) and what a step made, where it is kept for the job TTL: beside the job for the next
-- step and a retry (`step:<tenant>:<id>:<n>`), or as a named result (`result:<tenant>:<id>:<name>`);
-- either is held against the tenant's byte quota like the job's own result (finish.lua).
-- KEYS: 1 job, 2 where the output goes (unused without one), 3 bytes held per tenant, 4 the tenant's holds
-- ARGV: 1 lease, 2 steps JSON, 3 output ('' for none), 4 ttl (ms), 5 the changes channel, 6 member,
--       7 hold member prefix ('' when the output is not held), 8 tenant, 9 expiry (ms since the epoch)
-- Returns 1, or 0 when the lease is gone.
if redis.call('HGET', KEYS[1], 'lease') ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], 'steps', ARGV[2])
if ARGV[3] ~= '' then
  local before = redis.call('STRLEN', KEYS[2])
  redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4])
  if ARGV[7] ~= '' and before == 0 then
    local size = string.len(ARGV[3])
    redis.call('HINCRBY', KEYS[3], ARGV[8], size)
    redis.call('ZADD', KEYS[4], ARGV[9], ARGV[7] .. '/' .. size)
  end
end
redis.call('PUBLISH', ARGV[5], ARGV[6])
return 1

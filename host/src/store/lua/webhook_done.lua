#!lua flags=allow-oom
-- allow-oom: recording an attempt is small and ends a delivery; it must work when Redis is full.
-- Records one delivery attempt, only if the caller still holds its claim (claim_webhook.lua): an attempt
-- whose lease ran out (and was claimed again) records nothing. Then either schedules the next attempt or
-- ends the delivery (delivered, or given up), which frees its place in the tenant's pending count.
-- KEYS: 1 the webhooks zset, 2 job, 3 the job's deliveries list, 4 pending deliveries per tenant
-- ARGV: 1 member, 2 lease token, 3 the attempt (JSON), 4 next attempt at (ms; 0: the delivery is over),
--       5 the state to show (`retrying`, `delivered` or `failed`), 6 attempts kept
-- Returns 1 when recorded, 0 when the claim was lost.
if redis.call('HGET', KEYS[2], 'webhook_lease') ~= ARGV[2] then
  return 0
end
redis.call('HDEL', KEYS[2], 'webhook_lease')
redis.call('HSET', KEYS[2], 'webhook_state', ARGV[5])
redis.call('RPUSH', KEYS[3], ARGV[3])
redis.call('LTRIM', KEYS[3], -tonumber(ARGV[6]), -1)
-- The attempts live as long as the job (a final job always has a TTL).
local ttl = redis.call('PTTL', KEYS[2])
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[3], ttl)
end
if ARGV[4] == '0' then
  redis.call('ZREM', KEYS[1], ARGV[1])
  local tenant = string.match(ARGV[1], '^([^/]+)/')
  if redis.call('HINCRBY', KEYS[4], tenant, -1) <= 0 then
    redis.call('HDEL', KEYS[4], tenant)
  end
else
  redis.call('ZADD', KEYS[1], ARGV[4], ARGV[1])
end
return 1

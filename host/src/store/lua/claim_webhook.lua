#!lua flags=allow-oom
-- allow-oom: a claim only moves a score and bumps a counter; deliveries must go on when Redis is full.
-- Claims the next due webhook delivery for one attempt. The claim is a lease: the member's score moves
-- to now + lease, so no other process takes it while this attempt runs, and if the claimant dies the
-- delivery is due again when the lease ends (and retried, as a new attempt).
-- KEYS: 1 the webhooks zset, 2 pending deliveries per tenant
-- ARGV: 1 now (ms), 2 lease (ms), 3 key prefix, 4 the claimant (its lease token's prefix)
-- Returns nil when nothing is due; {tenant, id, '', 0, ''} for a job that is gone (expired or removed;
-- its delivery is dropped here); else {tenant, id, callback url, attempt number, lease token}.
local now = tonumber(ARGV[1])
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 1)
if #due == 0 then
  return false
end
local member = due[1]
local tenant, id = string.match(member, '^([^/]+)/(.+)$')
local job = ARGV[3] .. ':job:' .. tenant .. ':' .. id
local url = redis.call('HGET', job, 'callback_url')
if not url then
  redis.call('ZREM', KEYS[1], member)
  if redis.call('HINCRBY', KEYS[2], tenant, -1) <= 0 then
    redis.call('HDEL', KEYS[2], tenant)
  end
  return {tenant, id, '', 0, ''}
end
local attempt = redis.call('HINCRBY', job, 'webhook_attempts', 1)
local lease = ARGV[4] .. ':' .. attempt
redis.call('HSET', job, 'webhook_lease', lease)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), member)
return {tenant, id, url, attempt, lease}

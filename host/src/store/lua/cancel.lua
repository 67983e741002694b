#!lua flags=allow-oom
-- allow-oom: cancelling must work when Redis is full (it writes a few small fields).
-- Cancels a scheduled, queued or running job. A scheduled one leaves the delayed zset and its tenant's
-- scheduled count. A running job loses its lease, so its worker's next renewal fails and
-- the worker interrupts the guest. A queued job leaves its tenant's queue (LREM: O(queue length), bounded
-- by the max-queued quota), so queue depths, which autoscaling reads, count only jobs that will run.
-- KEYS: 1 job, 2 input, 3 leases, 4 delayed, 5 the tenant's running set, 6 queued jobs by kind,
--       7 the tenant's normal queue (a high or low job's queue is built from it), 8 params, 9 bytes held per tenant, 10 the tenant's held-bytes expiry zset,
--       11 the job's log
-- ARGV: 1 member, 2 now, 3 ttl (ms), 4 id, 5 the changes channel
-- Returns the status before the call, or nil for an unknown job.
local status = redis.call('HGET', KEYS[1], 'status')
if not status then
  return false
end
if status == 'scheduled' or status == 'queued' or status == 'running' then
  local prefix = string.match(KEYS[1], '^(.-):job:')
  local now = tonumber(ARGV[2])
  redis.call('HSET', KEYS[1], 'status', 'cancelled', 'finished_at', now, 'expires_at', now + tonumber(ARGV[3]))
  redis.call('HDEL', KEYS[1], 'lease')
  redis.call('ZREM', KEYS[3], ARGV[1])
  local was_retrying = redis.call('ZREM', KEYS[4], ARGV[1]) == 1
  if status == 'queued' and not was_retrying then
    redis.call('HINCRBY', KEYS[6], redis.call('HGET', KEYS[1], 'kind'), -1)
    local queue = KEYS[7]
    local priority = redis.call('HGET', KEYS[1], 'priority')
    if priority then
      queue = prefix .. ':queue-' .. priority .. ':' .. string.match(ARGV[1], '^([^/]+)/')
    end
    redis.call('LREM', queue, 0, ARGV[4])
  elseif status == 'scheduled' then
    local scheduled = prefix .. ':scheduled-by-tenant'
    local tenant = string.match(ARGV[1], '^([^/]+)/')
    if redis.call('HINCRBY', scheduled, tenant, -1) <= 0 then
      redis.call('HDEL', scheduled, tenant)
    end
  end
  -- The per-kind running count moves with the running set (dequeue.lua).
  if redis.call('SREM', KEYS[5], ARGV[4]) == 1 then
    local by_kind = prefix .. ':running-by-kind:' .. string.match(ARGV[1], '^([^/]+)/')
    if redis.call('HINCRBY', by_kind, redis.call('HGET', KEYS[1], 'kind'), -1) <= 0 then
      redis.call('HDEL', by_kind, redis.call('HGET', KEYS[1], 'kind'))
    end
  end
  -- The input and params (counted at submit) and any log are kept for the TTL: what the job was asked to
  -- do, and what a retry runs on.
  local submitted = redis.call('STRLEN', KEYS[2]) + redis.call('STRLEN', KEYS[8])
  local kept = submitted + redis.call('STRLEN', KEYS[11])
  -- [versions] A final state lets go of the job's kind version (collect_versions.lua).
  local unfinished = prefix .. ':unfinished-by-version'
  local version = redis.call('HGET', KEYS[1], 'version')
  -- A pipeline holds each step's version (comma-separated).
  for held in string.gmatch(version, '[^,]+') do
    if redis.call('HINCRBY', unfinished, held, -1) <= 0 then
      redis.call('HDEL', unfinished, held)
    end
  end
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
  redis.call('PEXPIRE', KEYS[8], ARGV[3])
  local tenant = redis.call('HGET', KEYS[1], 'tenant')
  if redis.call('HINCRBY', KEYS[9], tenant, kept - submitted) <= 0 then
    redis.call('HDEL', KEYS[9], tenant)
  end
  if kept > 0 then
    redis.call('ZADD', KEYS[10], now + tonumber(ARGV[3]), ARGV[4] .. '/' .. kept)
  end
  -- [webhooks] A final state queues the job's completion webhook, due now (claim_webhook.lua).
  if redis.call('HEXISTS', KEYS[1], 'callback_url') == 1 then
    redis.call('HSET', KEYS[1], 'webhook_state', 'pending')
    redis.call('ZADD', prefix .. ':webhooks', now, ARGV[1])
  end
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  redis.call('PUBLISH', ARGV[5], ARGV[1])
end
return status

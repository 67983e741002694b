#!lua flags=allow-oom
-- allow-oom: accepted work must finish when Redis is full. Success first frees what the job no longer
-- needs (its input and params), then writes its result; a failure keeps both for the TTL (retry) and
-- writes only its log.
-- Records the outcome of one attempt, only if the caller still holds the job's lease: a duplicate run
-- (after a lease expired) can never overwrite the result or the final state of the run that owns the job.
-- A retry past the job's last attempt becomes a failure with the same error. A release (the worker is
-- shutting down) puts the job back at the head of its queue at once and gives back the attempt.
-- KEYS: 1 job, 2 input, 3 result, 4 leases, 5 delayed, 6 queue, 7 ready ring, 8 ready set, 9 wake,
--       10 the tenant's running set, 11 this minute's finished-jobs counter, 12 queued jobs by kind,
--       13 the job's log, 14 params, 15 bytes held per tenant, 16 the tenant's held-bytes expiry zset
-- ARGV: 1 member, 2 lease, 3 outcome (succeeded|failed|retry|release), 4 now, 5 ttl (ms),
--       6 error code, 7 error message, 8 retry at (ms), 9 media type, 10 result bytes,
--       11 the guest's log of this attempt ('' for none: an earlier log is kept), 12 the changes channel
-- A final state of a job with a callback URL queues its webhook delivery (`webhooks` zset).
-- Every change is announced on the changes channel (the member), for the API's watchers.
if redis.call('HGET', KEYS[1], 'lease') ~= ARGV[2] then
  return 0
end
local now = tonumber(ARGV[4])
local ttl = tonumber(ARGV[5])
local outcome = ARGV[3]
if outcome == 'retry' then
  local job = redis.call('HMGET', KEYS[1], 'attempts', 'max_attempts')
  if tonumber(job[1]) >= tonumber(job[2]) then
    outcome = 'failed'
  end
end
-- Bytes the job held until now (its input and params, counted at submit), released at its final state.
local freed = 0
if outcome == 'succeeded' or outcome == 'failed' then
  freed = redis.call('STRLEN', KEYS[2]) + redis.call('STRLEN', KEYS[14])
  if outcome == 'succeeded' then
    redis.call('DEL', KEYS[2])
    redis.call('DEL', KEYS[14])
  else
    -- Kept as long as the failed job, to show what it was asked to do and so it can be retried.
    redis.call('PEXPIRE', KEYS[2], ttl)
    redis.call('PEXPIRE', KEYS[14], ttl)
  end
end
redis.call('PUBLISH', ARGV[12], ARGV[1])
if ARGV[11] ~= '' then
  redis.call('SET', KEYS[13], ARGV[11], 'PX', ttl)
end
redis.call('ZREM', KEYS[4], ARGV[1])
-- The per-kind running count moves with the running set (dequeue.lua), whatever the outcome.
if redis.call('SREM', KEYS[10], redis.call('HGET', KEYS[1], 'id')) == 1 then
  local by_kind = string.match(KEYS[1], '^(.-):job:') .. ':running-by-kind:' .. redis.call('HGET', KEYS[1], 'tenant')
  if redis.call('HINCRBY', by_kind, redis.call('HGET', KEYS[1], 'kind'), -1) <= 0 then
    redis.call('HDEL', by_kind, redis.call('HGET', KEYS[1], 'kind'))
  end
end
redis.call('HDEL', KEYS[1], 'lease')
if outcome == 'release' then
  local id = redis.call('HGET', KEYS[1], 'id')
  redis.call('HINCRBY', KEYS[1], 'attempts', -1)
  redis.call('HSET', KEYS[1], 'status', 'queued', 'progress', 0)
  -- Back to the head of the queue of its priority (KEYS[6] is the normal one).
  local queue = KEYS[6]
  local priority = redis.call('HGET', KEYS[1], 'priority')
  if priority then
    queue = string.match(KEYS[1], '^(.-):job:') .. ':queue-' .. priority .. ':' .. redis.call('HGET', KEYS[1], 'tenant')
  end
  redis.call('RPUSH', queue, id)
  redis.call('HINCRBY', KEYS[12], redis.call('HGET', KEYS[1], 'kind'), 1)
  local tenant = redis.call('HGET', KEYS[1], 'tenant')
  if redis.call('SADD', KEYS[8], tenant) == 1 then
    redis.call('RPUSH', KEYS[7], tenant)
  end
  redis.call('LPUSH', KEYS[9], 1)
  redis.call('LTRIM', KEYS[9], 0, 63)
  return 1
end
if outcome == 'retry' then
  redis.call('HSET', KEYS[1], 'status', 'queued', 'progress', 0, 'error_code', ARGV[6], 'error_message', ARGV[7])
  redis.call('ZADD', KEYS[5], ARGV[8], ARGV[1])
  return 1
end
if outcome == 'succeeded' then
  redis.call('SET', KEYS[3], ARGV[10], 'PX', ttl)
  -- The result cache (submit.lua): the next submit of the same kind version, params and input gets this.
  local cache_key = redis.call('HGET', KEYS[1], 'cache_key')
  if cache_key then
    redis.call('SET', cache_key, redis.call('HGET', KEYS[1], 'id'), 'PX', ttl)
  end
  redis.call('HSET', KEYS[1], 'status', 'succeeded', 'progress', 1, 'media_type', ARGV[9],
    'result_len', string.len(ARGV[10]))
  redis.call('HDEL', KEYS[1], 'error_code', 'error_message')
else
  redis.call('HSET', KEYS[1], 'status', 'failed', 'error_code', ARGV[6], 'error_message', ARGV[7])
end
redis.call('HSET', KEYS[1], 'finished_at', now, 'expires_at', now + ttl)
-- [versions] A final state lets go of the job's kind version (collect_versions.lua).
local unfinished = string.match(KEYS[1], '^(.-):job:') .. ':unfinished-by-version'
local version = redis.call('HGET', KEYS[1], 'version')
-- A pipeline holds each step's version (comma-separated).
for held in string.gmatch(version, '[^,]+') do
  if redis.call('HINCRBY', unfinished, held, -1) <= 0 then
    redis.call('HDEL', unfinished, held)
  end
end
if redis.call('INCR', KEYS[11]) == 1 then
  redis.call('EXPIRE', KEYS[11], 3600)
end
-- [webhooks] A final state queues the job's completion webhook, due now (claim_webhook.lua).
if redis.call('HEXISTS', KEYS[1], 'callback_url') == 1 then
  redis.call('HSET', KEYS[1], 'webhook_state', 'pending')
  redis.call('ZADD', string.match(KEYS[1], '^(.-):job:') .. ':webhooks', now, ARGV[1])
end
redis.call('PEXPIRE', KEYS[1], ttl)
-- What it keeps for the TTL (result, log, a failed job's params and input) is counted until the sweep sees
-- it expire.
local kept = redis.call('STRLEN', KEYS[3]) + redis.call('STRLEN', KEYS[13]) + redis.call('STRLEN', KEYS[14])
  + redis.call('STRLEN', KEYS[2])
local tenant = redis.call('HGET', KEYS[1], 'tenant')
if redis.call('HINCRBY', KEYS[15], tenant, kept - freed) <= 0 then
  redis.call('HDEL', KEYS[15], tenant)
end
if kept > 0 then
  redis.call('ZADD', KEYS[16], now + ttl, redis.call('HGET', KEYS[1], 'id') .. '/' .. kept)
end
return 1

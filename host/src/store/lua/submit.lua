#!lua
-- No flags: under `maxmemory` Redis refuses this script before it runs, so a full Redis never holds half
-- a submit (the API answers 503 + Retry-After).
-- Accepts a job: document, params, input, listing entry and queue entry in one atomic step, then wakes a worker.
-- With an Idempotency-Key (KEYS[10]), a key already used for the same payload returns that job instead, and
-- one used for another payload refuses; the key is kept for the job TTL (the idempotency window).
-- Quotas are checked here too, so a burst of concurrent submits cannot overshoot them: at most ARGV[11]
-- jobs in the tenant's queue, at most ARGV[12] submits in one second, at most ARGV[16] bytes held in Redis
-- (params and inputs of unfinished jobs, kept results, logs and params of finished ones; 0: no limit).
-- KEYS: 1 job, 2 input, 3 index, 4 queue, 5 ready ring, 6 ready set, 7 wake, 8 indexed tenants,
--       9 params, [10 idempotency key]
-- ARGV: 1 id, 2 tenant, 3 kind, 4 version, 5 params, 6 created_at, 7 max_attempts, 8 input: '0' (none),
--       '1' (the bytes are ARGV[9]) or 'copy' (ARGV[9] names the key to copy them from: a blob, or a
--       finished job's result), 9 input, 10 key prefix, 11 max queued, 12 max submits per second,
--       13 now (s), 14 payload hash, 15 idempotency window (ms) (both unused without KEYS[10]),
--       16 max bytes held, 17 the kind's largest input (bytes; 0: no limit; checked here for copies),
--       18 the result-cache key of the job's kind version, params and input ('' when not cached),
--       19 the job TTL (ms), 20 priority (`high`, `normal` or `low`), 21 run at (ms; 0: now),
--       22 a pipeline's steps JSON ('' for a job of one kind), 23 the id of the failed or cancelled job this
--       one retries ('' for none: see below), 24 the callback URL ('' for none), 25 the tenant's most
--       pending webhook deliveries (0: no limit)
-- Priorities: `normal` jobs go to KEYS[4] (`queue:<tenant>`, as before priorities), `high` and `low` ones to
-- `queue-high:<tenant>` and `queue-low:<tenant>`; dequeue.lua takes high, then normal, then low.
-- A job with a run-at time is `scheduled`: it waits in the delayed zset (as retries do) until dequeue.lua
-- promotes it, and counts as queued for the max-queued quota (`scheduled-by-tenant`); it holds its bytes.
-- A cache hit (ARGV[18] names a job of the tenant that succeeded within the TTL and still has its result)
-- makes the job succeeded at once, with a copy of that result and no run. A miss records the cache key on
-- the job, and finish.lua fills the cache when the job succeeds.
-- A retry (ARGV[23]) is refused with 'retried:<id>' when that job was retried already (by the job named):
-- checked and marked in this one step, so two operators retrying at once make one new job.
-- Returns 'new', 'cached:<earlier id>', 'same:<id>' (the key's job, same payload), 'reused:<id>' (the key's job, other payload),
-- 'ref:missing' / 'ref:too-big:<limit>' (the input to copy is gone, or too big for the kind),
-- or 'quota:queued:<limit>' / 'quota:rate:<limit>' / 'quota:bytes:<limit>' / 'quota:too-big:<limit>' / 'quota:webhooks:<limit>'
-- (nothing was queued).
if KEYS[10] then
  local seen = redis.call('GET', KEYS[10])
  if seen then
    local id, hash = string.match(seen, '^(%S+) (%S+)$')
    -- A key outliving its job (it should not: the job lasts longer) is free again.
    if id and redis.call('EXISTS', ARGV[10] .. ':job:' .. ARGV[2] .. ':' .. id) == 1 then
      if hash == ARGV[14] then
        return 'same:' .. id
      end
      return 'reused:' .. id
    end
  end
end
local retried = ARGV[23] ~= '' and (ARGV[10] .. ':job:' .. ARGV[2] .. ':' .. ARGV[23])
if retried then
  local earlier = redis.call('HGET', retried, 'retried_as')
  if earlier then
    return 'retried:' .. earlier
  end
end
local max_queued = tonumber(ARGV[11])
local scheduled_by_tenant = ARGV[10] .. ':scheduled-by-tenant'
if max_queued > 0 then
  local waiting = redis.call('LLEN', KEYS[4]) + redis.call('LLEN', ARGV[10] .. ':queue-high:' .. ARGV[2])
    + redis.call('LLEN', ARGV[10] .. ':queue-low:' .. ARGV[2])
    + tonumber(redis.call('HGET', scheduled_by_tenant, ARGV[2]) or '0')
  if waiting >= max_queued then
    return 'quota:queued:' .. max_queued
  end
end
-- What this job holds until it ends; the scripts that end it account for what it keeps after.
local size = string.len(ARGV[5])
if ARGV[8] == '1' then
  size = size + string.len(ARGV[9])
elseif ARGV[8] == 'copy' then
  -- Checked here, atomically with the copy: the blob or result may expire at any moment.
  if redis.call('EXISTS', ARGV[9]) == 0 then
    return 'ref:missing'
  end
  local input_size = redis.call('STRLEN', ARGV[9])
  local max_input = tonumber(ARGV[17])
  if max_input > 0 and input_size > max_input then
    return 'ref:too-big:' .. max_input
  end
  size = size + input_size
end
local bytes = ARGV[10] .. ':bytes'
local max_bytes = tonumber(ARGV[16])
if max_bytes > 0 then
  if size > max_bytes then
    return 'quota:too-big:' .. max_bytes
  end
  if tonumber(redis.call('HGET', bytes, ARGV[2]) or '0') + size > max_bytes then
    return 'quota:bytes:' .. max_bytes
  end
end
-- [webhooks] A job with a callback URL holds one of the tenant's pending deliveries from now until its
-- delivery ends (webhook_done.lua), so their number is bounded by ARGV[25] (0: no limit).
local pending = ARGV[10] .. ':webhooks-pending'
if ARGV[24] ~= '' then
  local max_pending = tonumber(ARGV[25])
  if max_pending > 0 and tonumber(redis.call('HGET', pending, ARGV[2]) or '0') >= max_pending then
    return 'quota:webhooks:' .. max_pending
  end
end
local max_rate = tonumber(ARGV[12])
if max_rate > 0 then
  local bucket = ARGV[10] .. ':rate:' .. ARGV[2] .. ':' .. ARGV[13]
  local count = redis.call('INCR', bucket)
  if count == 1 then
    redis.call('EXPIRE', bucket, 2)
  end
  if count > max_rate then
    return 'quota:rate:' .. max_rate
  end
end
if KEYS[10] then
  redis.call('SET', KEYS[10], ARGV[1] .. ' ' .. ARGV[14], 'PX', ARGV[15])
end
if ARGV[24] ~= '' then
  redis.call('HINCRBY', pending, ARGV[2], 1)
end
if ARGV[18] ~= '' then
  local earlier = redis.call('GET', ARGV[18])
  local source = earlier and (ARGV[10] .. ':result:' .. ARGV[2] .. ':' .. earlier)
  local media_type = earlier and redis.call('HGET', ARGV[10] .. ':job:' .. ARGV[2] .. ':' .. earlier, 'media_type')
  if media_type and redis.call('EXISTS', source) == 1 then
    local now = tonumber(ARGV[6])
    local ttl = tonumber(ARGV[19])
    local result = ARGV[10] .. ':result:' .. ARGV[2] .. ':' .. ARGV[1]
    redis.call('COPY', source, result, 'REPLACE')
    redis.call('PEXPIRE', result, ttl)
    local kept = redis.call('STRLEN', result)
    redis.call('HSET', KEYS[1],
      'id', ARGV[1], 'tenant', ARGV[2], 'kind', ARGV[3], 'version', ARGV[4],
      'status', 'succeeded', 'progress', 1, 'attempts', 0, 'max_attempts', ARGV[7], 'created_at', ARGV[6],
      'finished_at', now, 'expires_at', now + ttl, 'media_type', media_type, 'result_len', kept,
      'cached', earlier)
    if ARGV[24] ~= '' then
      -- Final at once: its webhook is due now.
      redis.call('HSET', KEYS[1], 'callback_url', ARGV[24], 'webhook_state', 'pending')
      redis.call('ZADD', ARGV[10] .. ':webhooks', now, ARGV[2] .. '/' .. ARGV[1])
    end
    redis.call('PEXPIRE', KEYS[1], ttl)
    redis.call('ZADD', KEYS[3], 0, ARGV[1])
    redis.call('SADD', KEYS[8], ARGV[2])
    -- The copy is held like any result (finish.lua), until the sweep sees it expire.
    redis.call('HINCRBY', bytes, ARGV[2], kept)
    redis.call('ZADD', ARGV[10] .. ':held:' .. ARGV[2], now + ttl, ARGV[1] .. '/' .. kept)
    return 'cached:' .. earlier
  end
end
redis.call('HSET', KEYS[1],
  'id', ARGV[1], 'tenant', ARGV[2], 'kind', ARGV[3], 'version', ARGV[4],
  'status', 'queued', 'progress', 0, 'attempts', 0, 'max_attempts', ARGV[7], 'created_at', ARGV[6])
if ARGV[18] ~= '' then
  redis.call('HSET', KEYS[1], 'cache_key', ARGV[18])
end
if retried then
  redis.call('HSET', KEYS[1], 'retry_of', ARGV[23])
  redis.call('HSET', retried, 'retried_as', ARGV[1])
end
-- Absent means normal, as for jobs from before priorities.
if ARGV[20] ~= 'normal' then
  redis.call('HSET', KEYS[1], 'priority', ARGV[20])
end
local run_at = tonumber(ARGV[21])
if ARGV[22] ~= '' then
  redis.call('HSET', KEYS[1], 'steps', ARGV[22])
end
if ARGV[24] ~= '' then
  redis.call('HSET', KEYS[1], 'callback_url', ARGV[24])
end
-- Beside the document, so that reading a job never reads its params.
redis.call('SET', KEYS[9], ARGV[5])
if ARGV[8] ~= '0' then
  -- What a retry of this job copies its input from, if it has one.
  redis.call('HSET', KEYS[1], 'has_input', 1)
end
if ARGV[8] == '1' then
  redis.call('SET', KEYS[2], ARGV[9])
elseif ARGV[8] == 'copy' then
  -- COPY keeps the source's expiry; the input lives until the job ends instead.
  redis.call('COPY', ARGV[9], KEYS[2], 'REPLACE')
  redis.call('PERSIST', KEYS[2])
end
redis.call('HINCRBY', bytes, ARGV[2], size)
redis.call('ZADD', KEYS[3], 0, ARGV[1])
redis.call('SADD', KEYS[8], ARGV[2])
-- [versions] The job holds its kind version until it ends (collect_versions.lua).
-- A pipeline holds each step's version (comma-separated).
for held in string.gmatch(ARGV[4], '[^,]+') do
  redis.call('HINCRBY', ARGV[10] .. ':unfinished-by-version', held, 1)
end
if run_at > 0 then
  redis.call('HSET', KEYS[1], 'status', 'scheduled', 'run_at', run_at)
  redis.call('ZADD', ARGV[10] .. ':delayed', run_at, ARGV[2] .. '/' .. ARGV[1])
  redis.call('HINCRBY', scheduled_by_tenant, ARGV[2], 1)
  return 'new'
end
local queue = KEYS[4]
if ARGV[20] ~= 'normal' then
  queue = ARGV[10] .. ':queue-' .. ARGV[20] .. ':' .. ARGV[2]
end
redis.call('LPUSH', queue, ARGV[1])
redis.call('HINCRBY', ARGV[10] .. ':queued-by-kind', ARGV[3], 1)
if redis.call('SADD', KEYS[6], ARGV[2]) == 1 then
  redis.call('RPUSH', KEYS[5], ARGV[2])
end
redis.call('LPUSH', KEYS[7], 1)
redis.call('LTRIM', KEYS[7], 0, 63)
return 'new'

#!lua flags=allow-oom
-- allow-oom: a full Redis must still hand out queued work (finishing it frees memory). It writes only a few
-- small fields.
-- Claims the next job for a worker, fairly across tenants, in one atomic step; first it moves due retries
-- back to their queues and requeues (or fails) jobs whose worker stopped renewing its lease.
-- A tenant already running as many jobs as its limit allows is passed over (its jobs wait; others run),
-- and so is a paused tenant (`paused-tenants`). Within a tenant, its high queue is taken before its normal
-- one (`queue:<tenant>`) and that before its low one. Jobs of a paused kind (`paused-kinds`) stay queued:
-- up to MAX_SKIPPED of them at the head of a queue are stepped over and put back in order, so later jobs
-- of other kinds still run; behind more than that, the queue waits until a resume. A job of a kind the
-- tenant already runs as many of as its per-kind limit allows (`limits:kind-running:<tenant>`, counted in
-- `running-by-kind:<tenant>`) is stepped over the same way, so the tenant's other kinds still run.
-- Scheduled jobs (`run_at`) wait in the delayed zset beside retries and are queued here once due.
-- KEYS: 1 ready ring, 2 ready set, 3 leases, 4 delayed, 5 per-tenant running limits
-- ARGV: 1 now (ms), 2 lease length (ms), 3 worker token, 4 key prefix, 5 ttl of finished jobs (ms),
--       6 default running limit per tenant (0: none)
-- Returns {tenant, id, kind, version, params, attempts, lease, input|nil} or nil.
local now = tonumber(ARGV[1])
local lease_ms = tonumber(ARGV[2])
local prefix = ARGV[4]
local ttl = tonumber(ARGV[5])

local function split(member)
  return string.match(member, '^([^/]+)/(.+)$')
end
local function job_key(tenant, id)
  return prefix .. ':job:' .. tenant .. ':' .. id
end
-- Status changes are announced here (the member), for the API's watchers. Not the start of a run: that
-- would wake every waiter once more per job only to say `running`; a watcher sees it at its next reread
-- or with the first progress.
local changes = prefix .. ':changed'
local function running_set(tenant)
  return prefix .. ':running:' .. tenant
end
local function at_running_limit(tenant)
  local limit = tonumber(redis.call('HGET', KEYS[5], tenant) or ARGV[6])
  return limit > 0 and redis.call('SCARD', running_set(tenant)) >= limit
end
-- Per tenant and kind: running jobs (kept by every script that takes or drops a lease, in step with the
-- running set: a decrement only when SREM removed the id) and the admin's limits.
local function running_by_kind(tenant)
  return prefix .. ':running-by-kind:' .. tenant
end
local function kind_running_limits(tenant)
  return prefix .. ':limits:kind-running:' .. tenant
end
local function drop_running(tenant, id, kind)
  if redis.call('SREM', running_set(tenant), id) == 1 and kind then
    if redis.call('HINCRBY', running_by_kind(tenant), kind, -1) <= 0 then
      redis.call('HDEL', running_by_kind(tenant), kind)
    end
  end
end
local function kind_at_limit(tenant, kind)
  local limit = tonumber(redis.call('HGET', kind_running_limits(tenant), kind) or '0')
  return limit > 0 and tonumber(redis.call('HGET', running_by_kind(tenant), kind) or '0') >= limit
end
local queued_by_kind = prefix .. ':queued-by-kind'
local paused_kinds = prefix .. ':paused-kinds'
local paused_tenants = prefix .. ':paused-tenants'
-- A job's queue by its priority (`normal`, or no priority field, is `queue:<tenant>`).
local function queue_of(tenant, priority)
  if priority == 'high' or priority == 'low' then
    return prefix .. ':queue-' .. priority .. ':' .. tenant
  end
  return prefix .. ':queue:' .. tenant
end
local function make_ready(tenant, id)
  local job = redis.call('HMGET', job_key(tenant, id), 'kind', 'priority')
  redis.call('HINCRBY', queued_by_kind, job[1], 1)
  redis.call('LPUSH', queue_of(tenant, job[2]), id)
  if redis.call('SADD', KEYS[2], tenant) == 1 then
    redis.call('RPUSH', KEYS[1], tenant)
  end
end

-- 1. Retries whose backoff has passed, and scheduled jobs whose time has come.
local scheduled_by_tenant = prefix .. ':scheduled-by-tenant'
for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now, 'LIMIT', 0, 100)) do
  redis.call('ZREM', KEYS[4], member)
  local tenant, id = split(member)
  local status = redis.call('HGET', job_key(tenant, id), 'status')
  if status == 'scheduled' then
    redis.call('HSET', job_key(tenant, id), 'status', 'queued')
    if redis.call('HINCRBY', scheduled_by_tenant, tenant, -1) <= 0 then
      redis.call('HDEL', scheduled_by_tenant, tenant)
    end
    redis.call('PUBLISH', changes, member)
    make_ready(tenant, id)
  elseif status == 'queued' then
    make_ready(tenant, id)
  end
end

-- 2. Jobs whose worker died: run again, unless that was the last attempt.
for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, 100)) do
  redis.call('ZREM', KEYS[3], member)
  local tenant, id = split(member)
  local key = job_key(tenant, id)
  drop_running(tenant, id, redis.call('HGET', key, 'kind'))
  local job = redis.call('HMGET', key, 'status', 'attempts', 'max_attempts')
  if job[1] == 'running' then
    redis.call('PUBLISH', changes, member)
    local message = 'the worker running this job stopped renewing its lease (it crashed or lost Redis)'
    redis.call('HDEL', key, 'lease')
    redis.call('HSET', key, 'error_code', 'lost-worker', 'error_message', message)
    if tonumber(job[2]) >= tonumber(job[3]) then
      redis.call('HSET', key, 'status', 'failed', 'finished_at', now, 'expires_at', now + ttl)
      -- As in cancel.lua: the input and params (counted at submit) and any log are kept for the TTL.
      local input = prefix .. ':input:' .. tenant .. ':' .. id
      local params = prefix .. ':params:' .. tenant .. ':' .. id
      local log = redis.call('STRLEN', prefix .. ':log:' .. tenant .. ':' .. id)
      local bytes = prefix .. ':bytes'
      if redis.call('HINCRBY', bytes, tenant, log) <= 0 then
        redis.call('HDEL', bytes, tenant)
      end
      local kept = log + redis.call('STRLEN', params) + redis.call('STRLEN', input)
      if kept > 0 then
        redis.call('ZADD', prefix .. ':held:' .. tenant, now + ttl, id .. '/' .. kept)
      end
      redis.call('PEXPIRE', input, ttl)
      redis.call('PEXPIRE', params, ttl)
      redis.call('PEXPIRE', key, ttl)
      -- [webhooks] A final state queues the job's completion webhook, due now (claim_webhook.lua).
      if redis.call('HEXISTS', key, 'callback_url') == 1 then
        redis.call('HSET', key, 'webhook_state', 'pending')
        redis.call('ZADD', prefix .. ':webhooks', now, member)
      end
      -- [versions] A final state lets go of the job's kind version (collect_versions.lua).
      local unfinished = prefix .. ':unfinished-by-version'
      local version = redis.call('HGET', key, 'version')
      -- A pipeline holds each step's version (comma-separated).
      for held in string.gmatch(version, '[^,]+') do
        if redis.call('HINCRBY', unfinished, held, -1) <= 0 then
          redis.call('HDEL', unfinished, held)
        end
      end
    else
      redis.call('HSET', key, 'status', 'queued', 'progress', 0)
      make_ready(tenant, id)
    end
  end
end

-- 3. The next job: take the tenant at the head of the ring and rotate it to the back (round-robin).
-- Each tenant in the ring is visited at most once per call; at most `budget` queue entries are popped.
local budget = 1000
local MAX_SKIPPED = 16
-- The oldest runnable job of one queue, or nil. Entries of jobs no longer queued (expired; cancelled ones
-- are removed by cancel.lua) are dropped; jobs of paused kinds, or of kinds at the tenant's per-kind limit,
-- are put back at the head, in order.
local function take(tenant, queue)
  local skipped = {}
  local found = nil
  while budget > 0 and #skipped < MAX_SKIPPED do
    local id = redis.call('RPOP', queue)
    if not id then
      break
    end
    budget = budget - 1
    local job = redis.call('HMGET', job_key(tenant, id), 'status', 'attempts', 'kind', 'version')
    if job[1] == 'queued' then
      if redis.call('SISMEMBER', paused_kinds, job[3]) == 1 or kind_at_limit(tenant, job[3]) then
        table.insert(skipped, id)
      else
        found = {id, job}
        break
      end
    end
  end
  for i = #skipped, 1, -1 do
    redis.call('RPUSH', queue, skipped[i])
  end
  return found
end

local visits = redis.call('LLEN', KEYS[1])
while visits > 0 and budget > 0 do
  visits = visits - 1
  local tenant = redis.call('LMOVE', KEYS[1], KEYS[1], 'LEFT', 'RIGHT')
  if redis.call('HEXISTS', paused_tenants, tenant) == 0 and not at_running_limit(tenant) then
    local queues = {queue_of(tenant, 'high'), queue_of(tenant, 'normal'), queue_of(tenant, 'low')}
    local found = nil
    for _, queue in ipairs(queues) do
      found = take(tenant, queue)
      if found then
        break
      end
    end
    if found then
      local id, job = found[1], found[2]
      local key = job_key(tenant, id)
      local attempts = tonumber(job[2]) + 1
      local lease = ARGV[3] .. ':' .. attempts
      redis.call('HSET', key, 'status', 'running', 'attempts', attempts, 'started_at', now, 'progress', 0,
        'lease', lease)
      redis.call('ZADD', KEYS[3], now + lease_ms, tenant .. '/' .. id)
      redis.call('SADD', running_set(tenant), id)
      redis.call('HINCRBY', running_by_kind(tenant), job[3], 1)
      redis.call('HINCRBY', queued_by_kind, job[3], -1)
      local input = redis.call('GET', prefix .. ':input:' .. tenant .. ':' .. id)
      -- Jobs queued before params moved beside the document still carry them inside it.
      local params = redis.call('GET', prefix .. ':params:' .. tenant .. ':' .. id)
        or redis.call('HGET', key, 'params') or '{}'
      return {tenant, id, job[3], job[4], params, attempts, lease, input}
    end
    -- A tenant with nothing queued leaves the ring until its next submit (one with only paused jobs stays).
    if redis.call('LLEN', queues[1]) + redis.call('LLEN', queues[2]) + redis.call('LLEN', queues[3]) == 0 then
      redis.call('LREM', KEYS[1], 0, tenant)
      redis.call('SREM', KEYS[2], tenant)
    end
  end
end
return false

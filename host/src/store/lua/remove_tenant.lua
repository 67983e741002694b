#!lua flags=allow-oom
-- allow-oom: removing a tenant frees memory, so it must work when Redis is full.
-- Removes a tenant and everything of it: its keys (also those in rotation grace), its quotas (also per kind), its schedules, its queue
-- (queued and scheduled jobs never run), the leases of its running jobs (their workers find the lease gone at the next
-- renewal and drop them), every job it has (documents, params, inputs, results, logs, webhook deliveries), its blobs, the bytes counted
-- for it, and the hold its unfinished jobs had on their kind versions. Its id is never used again, so
-- whatever is left behind (idempotency records) is unreachable and expires on its own.
-- KEYS: 1 tenants, 2 api keys, 3 retiring keys, 4 running limits, 5 leases, 6 delayed,
--       7 queued jobs by kind, 8 indexed tenants
-- ARGV: 1 name, 2 key prefix, 3 the changes channel, 4.. the per-job key kinds to delete
--       (`job` first: `<prefix>:<kind>:<tenant id>:<job id>`)
-- Returns the number of jobs removed, or -1 if there is no such tenant.
local entry = redis.call('HGET', KEYS[1], ARGV[1])
if not entry then
  return -1
end
local tenant = cjson.decode(entry)
local id = tenant['id'] or ARGV[1]
local prefix = ARGV[2]
redis.call('HDEL', KEYS[2], tenant['key_hash'])
for _, hash in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do
  if redis.call('HGET', KEYS[2], hash) == id then
    redis.call('HDEL', KEYS[2], hash)
    redis.call('ZREM', KEYS[3], hash)
  end
end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[4], id)

local function job_key(kind, job)
  return prefix .. ':' .. kind .. ':' .. id .. ':' .. job
end
-- Its three queues (by priority), its scheduled count and its pause.
for _, queue in ipairs({prefix .. ':queue:' .. id, prefix .. ':queue-high:' .. id, prefix .. ':queue-low:' .. id}) do
  for _, job in ipairs(redis.call('LRANGE', queue, 0, -1)) do
    local status, kind = unpack(redis.call('HMGET', job_key('job', job), 'status', 'kind'))
    if status == 'queued' and kind then
      redis.call('HINCRBY', KEYS[7], kind, -1)
    end
  end
  redis.call('DEL', queue)
end
redis.call('DEL', prefix .. ':running:' .. id, prefix .. ':running-by-kind:' .. id,
  prefix .. ':limits:kind-running:' .. id)
redis.call('HDEL', prefix .. ':scheduled-by-tenant', id)
redis.call('HDEL', prefix .. ':paused-tenants', id)
-- Its recurring schedules (their definitions, input copies and places in the due zset).
local schedules_of = prefix .. ':schedules-of:' .. id
for _, schedule in ipairs(redis.call('SMEMBERS', schedules_of)) do
  redis.call('ZREM', prefix .. ':schedules', id .. '/' .. schedule)
  redis.call('DEL', prefix .. ':schedule:' .. id .. ':' .. schedule, prefix .. ':schedule-input:' .. id .. ':' .. schedule)
end
redis.call('DEL', schedules_of)

local index = prefix .. ':jobs:' .. id
local unfinished = prefix .. ':unfinished-by-version'
local jobs = redis.call('ZRANGE', index, 0, -1)
for _, job in ipairs(jobs) do
  local member = id .. '/' .. job
  -- [versions] An unfinished job lets go of its kind version (collect_versions.lua).
  local status, version = unpack(redis.call('HMGET', job_key('job', job), 'status', 'version'))
  if (status == 'scheduled' or status == 'queued' or status == 'running') and version then
    -- A pipeline holds each step's version (comma-separated).
    for held in string.gmatch(version, '[^,]+') do
      if redis.call('HINCRBY', unfinished, held, -1) <= 0 then
        redis.call('HDEL', unfinished, held)
      end
    end
  end
  redis.call('ZREM', KEYS[5], member)
  redis.call('ZREM', KEYS[6], member)
  redis.call('ZREM', prefix .. ':webhooks', member)
  for i = 4, #ARGV do
    redis.call('DEL', job_key(ARGV[i], job))
  end
  redis.call('PUBLISH', ARGV[3], member)
end
-- Every live blob has a hold (put_blob.lua), so the holds name all of them.
local held = prefix .. ':held:' .. id
for _, member in ipairs(redis.call('ZRANGE', held, 0, -1)) do
  local hex = string.match(member, '^blob:(%x+)/')
  if hex then
    redis.call('DEL', prefix .. ':blob:' .. id .. ':' .. hex, prefix .. ':blob-type:' .. id .. ':' .. hex)
  end
end
redis.call('DEL', index, held)
redis.call('HDEL', prefix .. ':bytes', id)
-- Its webhook deliveries are dropped with its jobs, and its webhook secret goes.
redis.call('HDEL', prefix .. ':webhooks-pending', id)
redis.call('DEL', prefix .. ':webhook-secret:' .. id)
redis.call('SREM', KEYS[8], id)
return #jobs

#!lua
-- No flags, as submit.lua: under `maxmemory` Redis refuses this before it runs, and the schedule's due
-- time stays due (the next tick tries again).
-- Fires one due time of a recurring schedule, exactly once however many processes try: a compare-and-set
-- of the schedule's score in the due zset from the due time the caller saw to the next one it computed,
-- and in the same step the job, made by submit.lua's own code (included below at `SUBMIT`, so the
-- quotas are checked exactly as for a submit). A failed compare-and-set means another process fired this
-- due time (or the schedule is gone): nothing happens. A refused submit (a quota, the input copy gone)
-- or a skip the caller asks for (the kind is gone, the params no longer fit) still moves the schedule on:
-- that due time is skipped, and why is recorded on the schedule (`last_error`, `skipped`).
-- KEYS and ARGV 1-25: as submit.lua's (no idempotency key); then
-- ARGV: 26 member (`<tenant>/<schedule id>`), 27 the due time seen (ms), 28 the next due time (ms),
--       29 the schedule's hash, 30 the schedule id, 31 why to skip this due time ('' to make the job)
-- Returns 'lost', 'skipped', or what submit.lua returns ('new' when the job was made).
local schedules = ARGV[10] .. ':schedules'
local seen = redis.call('ZSCORE', schedules, ARGV[26])
if not seen or tonumber(seen) ~= tonumber(ARGV[27]) then
  return 'lost'
end
redis.call('ZADD', schedules, ARGV[28], ARGV[26])
redis.call('HSET', ARGV[29], 'next_at', ARGV[28])
local function skip(why)
  redis.call('HSET', ARGV[29], 'last_error', why, 'last_error_at', ARGV[27])
  redis.call('HINCRBY', ARGV[29], 'skipped', 1)
end
if ARGV[31] ~= '' then
  skip(ARGV[31])
  return 'skipped'
end
local function submit()
--[[SUBMIT]]
end
local answer = submit()
if answer == 'new' then
  redis.call('HSET', KEYS[1], 'schedule', ARGV[30], 'scheduled_for', ARGV[27])
  redis.call('HSET', ARGV[29], 'last_job', ARGV[1], 'last_at', ARGV[27])
  redis.call('HINCRBY', ARGV[29], 'fired', 1)
else
  skip('the submit was refused: ' .. answer)
end
return answer

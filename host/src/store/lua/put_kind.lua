#!lua
-- No flags: refused (503) when Redis is full, before it writes anything.
-- Registers a kind at a version: its component (stored once by its own hash, counted by the versions that
-- use it), the version's record (manifest + component hash), the version in the kind's history, then the
-- kind itself, in one step. Versions in a history are kept (`versions` score +inf); one pushed out of the
-- history (more than ARGV[10] versions) is retired (`versions` score: when), so the workers' collection
-- may delete it once no unfinished job needs it.
-- At start-up (ARGV[7] = '1') a built-in or `--kinds-dir` kind is registered only if the kind is still what
-- Kiln itself last registered (`builtins`): an admin's upload of that name, or deletion of it, is kept.
-- KEYS: 1 kinds, 2 versions, 3 builtins, 4 component refs
-- ARGV: 1 name, 2 kind JSON, 3 version, 4 component hash, 5 component bytes, 6 version record JSON,
--       7 at start-up ('1' or '0'), 8 now (ms), 9 key prefix, 10 most versions a history keeps
-- Returns 'registered', or at start-up 'kept' (the admin's choice stands).
local name, version, now = ARGV[1], ARGV[3], tonumber(ARGV[8])
local old = redis.call('HGET', KEYS[1], name)
local old_version = old and cjson.decode(old).version
if ARGV[7] == '1' then
  local recorded = redis.call('HGET', KEYS[3], name)
  -- No record: the first start that keeps one; the kind is taken to be Kiln's, as it always was before.
  if recorded and old_version ~= recorded then
    return 'kept'
  end
  redis.call('HSET', KEYS[3], name, version)
end
local record = ARGV[9] .. ':version:' .. version
if redis.call('SET', record, ARGV[6], 'NX') then
  redis.call('SET', ARGV[9] .. ':component:' .. ARGV[4], ARGV[5], 'NX')
  redis.call('HINCRBY', KEYS[4], ARGV[4], 1)
end
local history = ARGV[9] .. ':kind-versions:' .. name
-- A kind registered before histories existed: its current version joins the history just before this one.
if old_version and old_version ~= version and not redis.call('ZSCORE', history, old_version) then
  redis.call('ZADD', history, now - 1, old_version)
end
redis.call('ZADD', history, now, version)
redis.call('ZADD', KEYS[2], '+inf', version)
local excess = redis.call('ZCARD', history) - tonumber(ARGV[10])
if excess > 0 then
  -- The oldest uploads go; never the one being registered, which is the newest.
  for _, dropped in ipairs(redis.call('ZRANGE', history, 0, excess - 1)) do
    redis.call('ZREM', history, dropped)
    redis.call('ZADD', KEYS[2], now, dropped)
  end
end
redis.call('HSET', KEYS[1], name, ARGV[2])
return 'registered'

#!lua
-- No flags: refused (503) when Redis is full, before it writes anything.
-- Makes a version from the kind's history current again, with no upload: the kind's entry becomes ARGV[2]
-- (built by the caller from the version's record). The version keeps its place in the history.
-- KEYS: 1 kinds, 2 the kind's history
-- ARGV: 1 name, 2 kind JSON, 3 version
-- Returns 'current', 'no-kind' or 'no-version' (not in the kind's history).
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then
  return 'no-kind'
end
if not redis.call('ZSCORE', KEYS[2], ARGV[3]) then
  return 'no-version'
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 'current'

#!lua flags=allow-oom
-- allow-oom: collecting frees memory, so it must work when Redis is full.
-- Deletes kind versions retired before the cutoff that no unfinished job refers to, and the components
-- no remaining version uses. The cutoff leaves time for an API process whose catalog still shows the
-- retired version to submit on it (the job then holds it). Bounded: at most ARGV[3] versions per call.
-- KEYS: 1 versions, 2 unfinished jobs by version, 3 component refs
-- ARGV: 1 cutoff (ms), 2 key prefix, 3 most versions to look at
-- Returns the number of versions deleted.
local retired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local deleted = 0
for _, version in ipairs(retired) do
  if (tonumber(redis.call('HGET', KEYS[2], version)) or 0) <= 0 then
    local key = ARGV[2] .. ':version:' .. version
    local record = redis.call('GET', key)
    if record then
      local component = cjson.decode(record).component
      if redis.call('HINCRBY', KEYS[3], component, -1) <= 0 then
        redis.call('HDEL', KEYS[3], component)
        redis.call('DEL', ARGV[2] .. ':component:' .. component)
      end
      redis.call('DEL', key)
    end
    redis.call('ZREM', KEYS[1], version)
    redis.call('HDEL', KEYS[2], version)
    deleted = deleted + 1
  end
end
return deleted

#!lua flags=allow-oom
-- allow-oom: it only drops keys, and the key ring must stay readable when Redis is full.
-- Drops the keys whose rotation grace has passed, then returns every live key: hash, tenant id, ...
-- KEYS: 1 api keys, 2 retiring keys
-- ARGV: 1 now (ms)
for _, hash in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])) do
  redis.call('HDEL', KEYS[1], hash)
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
return redis.call('HGETALL', KEYS[1])

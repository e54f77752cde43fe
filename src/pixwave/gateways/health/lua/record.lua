-- KEYS: circuit, probe. ARGV: now, key base, up (1/0), latency ms, bucket ms, buckets,
-- failure threshold, failure rate, open ms, latencies kept per bucket, circuit TTL ms,
-- consecutive failures that open (0: off).
-- Returns {transition, open_until, successes, failures}; transition is "" when none.
local base = ARGV[2]
local up = ARGV[3] == '1'
local latency = ARGV[4]
local bucket_ms = tonumber(ARGV[5])
local buckets = tonumber(ARGV[6])
local threshold = tonumber(ARGV[7])
local rate = tonumber(ARGV[8])
local open_ms = tonumber(ARGV[9])
local keep = tonumber(ARGV[10])
local circuit_ttl = ARGV[11]
local in_a_row = tonumber(ARGV[12])
local index = math.floor(now / bucket_ms)
local bucket_ttl = bucket_ms * (buckets + 1)
local streak_key = base .. 'streak'

local function count()
  if up then
    redis.call('DEL', streak_key)
  else
    -- a streak lasts one window: failures further apart are not "in a row"
    local v = redis.call('HMGET', streak_key, 'n', 'at')
    local n = tonumber(v[1]) or 0
    if now - (tonumber(v[2]) or 0) > bucket_ttl then n = 0 end
    redis.call('HSET', streak_key, 'n', n + 1, 'at', now)
    redis.call('PEXPIRE', streak_key, bucket_ttl)
  end
  local b = base .. 'b:' .. index
  redis.call('HINCRBY', b, up and 's' or 'f', 1)
  redis.call('PEXPIRE', b, bucket_ttl)
  local l = base .. 'l:' .. index
  redis.call('RPUSH', l, latency)
  redis.call('LTRIM', l, -keep, -1)
  redis.call('PEXPIRE', l, bucket_ttl)
end

local function open()
  local open_until = now + open_ms
  redis.call('HSET', KEYS[1], 'until', open_until)
  redis.call('PEXPIRE', KEYS[1], circuit_ttl)
  redis.call('DEL', KEYS[2])
  return open_until
end

local open_until = tonumber(redis.call('HGET', KEYS[1], 'until'))
if open_until and open_until <= now then
  -- half-open: this outcome decides, whoever reports it
  if up then
    for i = index - buckets + 1, index do
      redis.call('DEL', base .. 'b:' .. i, base .. 'l:' .. i)
    end
    redis.call('DEL', KEYS[1], KEYS[2])
    count()
    return {'closed', 0, 1, 0}
  end
  count()
  return {'reopened', open(), 0, 0}
end
count()
if open_until or up then
  return {'', 0, 0, 0}
end
local successes, failures = 0, 0
for i = index - buckets + 1, index do
  local v = redis.call('HMGET', base .. 'b:' .. i, 's', 'f')
  successes = successes + (tonumber(v[1]) or 0)
  failures = failures + (tonumber(v[2]) or 0)
end
local streak = tonumber(redis.call('HGET', streak_key, 'n')) or 0
if (failures >= threshold and failures >= rate * (successes + failures))
    or (in_a_row > 0 and streak >= in_a_row) then
  return {'opened', open(), successes, failures}
end
return {'', 0, successes, failures}

-- The router's question in one round trip. KEYS: per gateway, its circuit and settings hash.
-- ARGV: now, bucket ms, buckets, then per gateway its key base. Returns per gateway the
-- snapshot's six values, then enabled and priority (false when unset).
local out = {}
local bucket_ms, buckets = tonumber(ARGV[2]), tonumber(ARGV[3])
for g = 1, #KEYS / 2 do
  for _, v in ipairs(snapshot(KEYS[2 * g - 1], ARGV[3 + g], bucket_ms, buckets)) do
    table.insert(out, v)
  end
  local settings = redis.call('HMGET', KEYS[2 * g], 'enabled', 'priority')
  table.insert(out, settings[1])
  table.insert(out, settings[2])
end
return out

-- Every script takes the time as ARGV[1] (epoch ms), or "" to use the Redis server's clock —
-- one clock for the whole cluster. Bucket keys are derived inside the script from the current
-- bucket index (unknown to the caller when Redis keeps the time); they share the circuit's
-- hash tag, so they live in the same slot.
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

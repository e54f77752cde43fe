-- One (gateway, operation)'s window and circuit: {state (0 closed, 1 open, 2 half-open),
-- open_until, successes, failures, p95 or -1, failures in a row}; the p95 is nearest-rank,
-- like :func:`p95`; the streak is 0 once its newest failure is older than the streak's life.
local function snapshot(circuit, base, bucket_ms, buckets)
  local index = math.floor(now / bucket_ms)
  local open_until = tonumber(redis.call('HGET', circuit, 'until'))
  local state = 0
  if open_until then
    if now < open_until then state = 1 else state = 2 end
  end
  local successes, failures, latencies = 0, 0, {}
  for i = index - buckets + 1, index do
    local v = redis.call('HMGET', base .. 'b:' .. i, 's', 'f')
    successes = successes + (tonumber(v[1]) or 0)
    failures = failures + (tonumber(v[2]) or 0)
    for _, latency in ipairs(redis.call('LRANGE', base .. 'l:' .. i, 0, -1)) do
      table.insert(latencies, tonumber(latency))
    end
  end
  local p95 = -1
  if #latencies > 0 then
    table.sort(latencies)
    p95 = latencies[math.floor((95 * #latencies + 99) / 100)]
  end
  local streak = 0
  local run = redis.call('HMGET', base .. 'streak', 'n', 'at')
  if run[1] and now - (tonumber(run[2]) or 0) <= bucket_ms * (buckets + 1) then
    streak = tonumber(run[1])
  end
  return {state, open_until or 0, successes, failures, p95, streak}
end

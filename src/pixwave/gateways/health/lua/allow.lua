-- KEYS: circuit, probe. ARGV: now, probe ms. Returns 0 (no), 1 (closed: yes), 2 (won the probe).
local open_until = tonumber(redis.call('HGET', KEYS[1], 'until'))
if not open_until then return 1 end
if now < open_until then return 0 end
local held_until = tonumber(redis.call('GET', KEYS[2]))
if held_until and held_until > now then return 0 end
redis.call('SET', KEYS[2], now + tonumber(ARGV[2]), 'PX', ARGV[2])
return 2

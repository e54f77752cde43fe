-- KEYS: circuit. ARGV: now, key base, bucket ms, buckets.
return snapshot(KEYS[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]))

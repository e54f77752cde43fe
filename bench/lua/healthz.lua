-- wrk script for bench/payments.py: GET /healthz, the no-op baseline of the same server.
--
-- Usage: wrk ... -s bench/lua/healthz.lua URL
-- done() prints one line "WRK_RESULT {json}" in the same shape as the other scripts.

success_status = 200
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "") .. "report.lua")

function init(_args)
  start_counting()
end

function request()
  return wrk.format("GET", "/healthz")
end

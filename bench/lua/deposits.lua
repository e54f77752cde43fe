-- wrk script for bench/payments.py: POST /v1/deposits from random wallet owners.
--
-- Usage: wrk ... -s bench/lua/deposits.lua URL -- ACTORS_FILE RUN_NONCE
-- ACTORS_FILE has one "token wallet_id" pair per line. Every request gets a unique
-- Idempotency-Key (nonce, thread, counter), so none is a replay. Only 202 counts as accepted;
-- done() prints one line "WRK_RESULT {json}" that the Python driver parses.

success_status = 202
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "") .. "report.lua")

init = init_owners

function request()
  local headers = owner_headers(math.random(count))
  local body = '{"amount":' .. math.random(100, 50000) .. "}"
  return wrk.format("POST", "/v1/deposits", headers, body)
end

-- wrk script for bench/payments.py: POST /v1/withdrawals from random funded wallet owners.
--
-- Usage: wrk ... -s bench/lua/withdrawals.lua URL -- ACTORS_FILE RUN_NONCE
-- ACTORS_FILE has one "token wallet_id" pair per line. Every request gets a unique
-- Idempotency-Key (nonce, thread, counter), so none is a replay, and holds 1 to 100 centavos
-- (the wallets are funded far beyond a run, and stay under the default money limits). Only
-- 202 counts as accepted; done() prints one line "WRK_RESULT {json}".

success_status = 202
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "") .. "report.lua")

init = init_owners

function request()
  local headers = owner_headers(math.random(count))
  local body = '{"amount":' .. math.random(1, 100) .. ',"pix_key":"+5511987654321"}'
  return wrk.format("POST", "/v1/withdrawals", headers, body)
end

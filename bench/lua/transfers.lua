-- wrk script for bench/transfers.py: POST /v1/transfers from random payers to random payees.
--
-- Usage: wrk ... -s bench/lua/transfers.lua URL -- ACTORS_FILE RUN_NONCE
-- ACTORS_FILE has one "token wallet_id" pair per line. Every request gets a unique
-- Idempotency-Key (nonce, thread, counter), so none is a replay. Responses are counted per status
-- in each thread; done() prints one line "WRK_RESULT {json}" that the Python driver parses.

success_status = 201
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "") .. "report.lua")

init = init_owners

function request()
  local payer = math.random(count)
  local payee = math.random(count - 1)
  if payee >= payer then
    payee = payee + 1
  end
  local headers = owner_headers(payer)
  local body = '{"to_wallet_id":"' .. wallets[payee] .. '","amount":' .. math.random(100) .. "}"
  return wrk.format("POST", "/v1/transfers", headers, body)
end

-- wrk script for bench/payments.py: GET /v1/transactions/{id} by the transaction's owner.
--
-- Usage: wrk ... -s bench/lua/get.lua URL -- IDS_FILE
-- IDS_FILE has one "token transaction_id" pair per line; each request picks one at random.
-- Only 200 counts; done() prints one line "WRK_RESULT {json}".

success_status = 200
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "") .. "report.lua")

function init(args)
  tokens, ids = read_pairs(args[1])
  count = #ids
  start_counting()
  headers = {}
end

function request()
  local n = math.random(count)
  headers["Authorization"] = tokens[n]
  return wrk.format("GET", "/v1/transactions/" .. ids[n], headers)
end

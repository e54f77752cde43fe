-- wrk script for bench/payments.py: GET /v1/transactions/{id} by the transaction's owner.
--
-- Usage: wrk ... -s bench/lua/get.lua URL -- IDS_FILE
-- IDS_FILE has one "token transaction_id" pair per line; each request picks one at random.
-- Only 200 counts; done() prints one line "WRK_RESULT {json}".

success_status = 200
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "") .. "report.lua")

function init(args)
  tokens, ids = {}, {}
  for line in io.lines(args[1]) do
    local token, id = line:match("^(%S+)%s+(%S+)$")
    if token then
      table.insert(tokens, "Bearer " .. token)
      table.insert(ids, id)
    end
  end
  count = #ids
  start_counting()
  headers = {}
end

function request()
  local n = math.random(count)
  headers["Authorization"] = tokens[n]
  return wrk.format("GET", "/v1/transactions/" .. ids[n], headers)
end

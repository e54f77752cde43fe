-- wrk script for bench/payments.py: signed Mercado Pago notifications into the API.
--
-- Usage: wrk ... -s bench/lua/webhooks.lua URL -- NOTIFICATIONS_FILE
-- Each line is "data_id request_id x-signature body", signed beforehand by the driver (the
-- signature holds for MERCADOPAGO_WEBHOOK_TOLERANCE_SECONDS). Every line is a different
-- notification id, so each request stores a new inbox event; the file is read in order and
-- wraps around (replays then answer 200 with nothing new). Only 200 counts.

success_status = 200
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "") .. "report.lua")

function init(args)
  lines = {}
  for line in io.lines(args[1]) do
    table.insert(lines, line)
  end
  count = #lines
  position = 0
  start_counting()
  headers = { ["Content-Type"] = "application/json" }
end

function request()
  position = position % count + 1
  local data_id, request_id, signature, body =
    lines[position]:match("^(%S+) (%S+) (%S+) (.+)$")
  headers["x-request-id"] = request_id
  headers["x-signature"] = signature
  local path = "/webhooks/mercadopago?data.id=" .. data_id .. "&type=payment"
  return wrk.format("POST", path, headers, body)
end

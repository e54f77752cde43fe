-- wrk script for bench/payments.py: signed Mercado Pago notifications into the API.
--
-- Usage: wrk ... -s bench/lua/webhooks.lua URL -- NOTIFICATIONS_FILE
-- Each line is "data_id request_id x-signature body", signed beforehand by the driver (the
-- signature holds for MERCADOPAGO_WEBHOOK_TOLERANCE_SECONDS). Every line is a different
-- notification id, so each request stores a new inbox event; the file is read in order and
-- wraps around (replays then answer 200 with nothing new). Only 200 counts.

local threads = {}

function setup(thread)
  thread:set("thread_no", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  lines = {}
  for line in io.lines(args[1]) do
    table.insert(lines, line)
  end
  count = #lines
  position = 0
  created = 0
  statuses = {}
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

function response(status, _headers, _body)
  if status == 200 then
    created = created + 1
  else
    local key = tostring(status)
    statuses[key] = (statuses[key] or 0) + 1
  end
end

function done(summary, latency, _requests)
  local total_created = 0
  local others = {}
  for _, thread in ipairs(threads) do
    total_created = total_created + thread:get("created")
    for status, n in pairs(thread:get("statuses")) do
      others[status] = (others[status] or 0) + n
    end
  end
  local parts = {}
  for status, n in pairs(others) do
    table.insert(parts, string.format('"%s":%d', status, n))
  end
  local errors = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests":%d,"duration_us":%d,"created":%d,"other_statuses":{%s},'
      .. '"socket_errors":%d,"timeouts":%d,"p50_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, total_created, table.concat(parts, ","),
    errors.connect + errors.read + errors.write, errors.timeout,
    latency:percentile(50), latency:percentile(99), latency.max
  ))
end

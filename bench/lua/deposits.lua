-- wrk script for bench/payments.py: POST /v1/deposits from random wallet owners.
--
-- Usage: wrk ... -s bench/lua/deposits.lua URL -- ACTORS_FILE RUN_NONCE
-- ACTORS_FILE has one "token wallet_id" pair per line. Every request gets a unique
-- Idempotency-Key (nonce, thread, counter), so none is a replay. Only 202 counts as accepted;
-- done() prints one line "WRK_RESULT {json}" that the Python driver parses.

local threads = {}

function setup(thread)
  thread:set("thread_no", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  tokens = {}
  for line in io.lines(args[1]) do
    local token = line:match("^(%S+)")
    if token then
      table.insert(tokens, "Bearer " .. token)
    end
  end
  count = #tokens
  prefix = args[2] .. "-" .. thread_no .. "-"
  sent = 0
  created = 0
  statuses = {}
  math.randomseed(os.time() * 100 + thread_no)
  headers = { ["Content-Type"] = "application/json" }
end

function request()
  sent = sent + 1
  headers["Authorization"] = tokens[math.random(count)]
  headers["Idempotency-Key"] = prefix .. sent
  local body = '{"amount":' .. math.random(100, 50000) .. "}"
  return wrk.format("POST", "/v1/deposits", headers, body)
end

function response(status, _headers, _body)
  if status == 202 then
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

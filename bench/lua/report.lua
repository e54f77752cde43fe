-- Shared by every wrk script under bench/: per-thread counting and the one-line report.
--
-- A script sets `success_status` (the status that counts as done), loads this file with
--   dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "") .. "report.lua")
-- and calls `start_counting()` from its init() (`read_pairs` reads a "token value" file). done()
-- prints one line "WRK_RESULT {json}" that the Python drivers parse.

local threads = {}

-- Reads a file of "token value" lines: returns the "Bearer token" headers and the values.
function read_pairs(path)
  local tokens, values = {}, {}
  for line in io.lines(path) do
    local token, value = line:match("^(%S+)%s+(%S+)$")
    if token then
      table.insert(tokens, "Bearer " .. token)
      table.insert(values, value)
    end
  end
  return tokens, values
end

function setup(thread)
  thread:set("thread_no", #threads + 1)
  table.insert(threads, thread)
end

function start_counting()
  created = 0
  statuses = {}
  math.randomseed(os.time() * 100 + thread_no)
end

-- init() of the scripts that POST as random wallet owners: args are ACTORS_FILE ("token
-- wallet_id" lines) and RUN_NONCE.
function init_owners(args)
  tokens, wallets = read_pairs(args[1])
  count = #tokens
  prefix = args[2] .. "-" .. thread_no .. "-"
  sent = 0
  start_counting()
  headers = { ["Content-Type"] = "application/json" }
end

-- The next request's headers, from owner `i`: an Idempotency-Key of its own (nonce, thread,
-- counter), so none is a replay.
function owner_headers(i)
  sent = sent + 1
  headers["Authorization"] = tokens[i]
  headers["Idempotency-Key"] = prefix .. sent
  return headers
end

function response(status, _headers, _body)
  if status == success_status then
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

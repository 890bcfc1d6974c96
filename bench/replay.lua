-- Replays precomputed, signed Twilio webhooks (written by bench/signing.py).
-- Usage: wrk ... -s bench/replay.lua URL -- DATAFILE NTHREADS
-- Thread k of N sends data lines k, k+N, k+2N, ... in order (wrapping), so threads never
-- send the same CallSid and bench/run.py can work out exactly which lines were sent.
-- At the end one line "BENCH_JSON {...}" carries the numbers bench/run.py reads.

local threads = {}
local created = 0

function setup(thread)
  thread:set("id", created)
  created = created + 1
  table.insert(threads, thread)
end

function init(args)
  local nthreads = tonumber(args[2])
  requests = {}
  sent = 0
  statuses = {}
  local n = 0
  for line in io.lines(args[1]) do
    if n % nthreads == id then
      local path, sig, body = line:match("^([^\t]*)\t([^\t]*)\t(.*)$")
      requests[#requests + 1] = wrk.format("POST", path, {
        ["Content-Type"] = "application/x-www-form-urlencoded",
        ["X-Twilio-Signature"] = sig,
        -- gunicorn's sync worker closes after every response anyway; saying so up front
        -- stops wrk from writing into a connection the server is closing.
        ["Connection"] = "close",
      }, body)
    end
    n = n + 1
  end
  if #requests == 0 then
    error("no requests for thread " .. id .. " in " .. args[1])
  end
end

function request()
  local r = requests[(sent % #requests) + 1]
  sent = sent + 1
  return r
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, _)
  local sent_by_thread, by_status = {}, {}
  for i, t in ipairs(threads) do
    sent_by_thread[i] = tostring(t:get("sent"))
    for code, count in pairs(t:get("statuses")) do
      by_status[code] = (by_status[code] or 0) + count
    end
  end
  local codes = {}
  for code, count in pairs(by_status) do
    codes[#codes + 1] = string.format('"%d": %d', code, count)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"duration_us": %d, "requests": %d, "bytes": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"latency_us": {"p50": %d, "p90": %d, "p99": %d, "max": %d, "mean": %.1f}, ' ..
    '"sent_by_thread": [%s], "statuses": {%s}}\n',
    summary.duration, summary.requests, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean,
    table.concat(sent_by_thread, ", "), table.concat(codes, ", ")))
end

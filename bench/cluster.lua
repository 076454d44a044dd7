-- Requests spread over several instances: wrk thread i talks to instance i mod N
-- (TALLY_BENCH_TARGETS="host:port,host:port,..."). TALLY_BENCH_MODE is "track" (a unique
-- event_id per request) or "verify". At the end it prints how many answers had each status.
local key = os.getenv("TALLY_BENCH_KEY")
local mode = os.getenv("TALLY_BENCH_MODE")
local ts = os.getenv("TALLY_BENCH_TS")

local targets = {}
for target in string.gmatch(os.getenv("TALLY_BENCH_TARGETS"), "[^,]+") do
  local host, port = string.match(target, "^(.+):(%d+)$")
  table.insert(targets, wrk.lookup(host, port)[1])
end

local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread.addr = targets[(#threads - 1) % #targets + 1]
  thread:set("prefix", tostring(#threads) .. "-" .. tostring(os.time()))
end

local headers = {
  ["Authorization"] = "Bearer " .. key,
  ["Content-Type"] = "application/json",
}
local counter = 0
statuses = {}

function request()
  if mode == "track" then
    counter = counter + 1
    local body = string.format(
      '{"skill_id":"bench","tool_name":"Read","ts":"%s","event_id":"%s-%d"}', ts, prefix, counter)
    return wrk.format("POST", "/api/track", headers, body)
  end
  return wrk.format("POST", "/api/v1/verify", headers, '{"endpoint":"/bench","method":"GET"}')
end

function response(status)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses")) do
      total[status] = (total[status] or 0) + n
    end
  end
  for status, n in pairs(total) do
    io.write(string.format("status_%d=%d\n", status, n))
  end
end

-- POST /api/track with a unique event_id per request (thread prefix + counter).
local key = os.getenv("TALLY_BENCH_KEY")
local ts = os.getenv("TALLY_BENCH_TS")
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("prefix", tostring(threads) .. "-" .. tostring(os.time()))
end

local counter = 0
function request()
  counter = counter + 1
  local body = string.format(
    '{"skill_id":"bench","tool_name":"Read","ts":"%s","event_id":"%s-%d"}', ts, prefix, counter)
  return wrk.format("POST", nil, {
    ["Authorization"] = "Bearer " .. key,
    ["Content-Type"] = "application/json",
  }, body)
end

function response(status)
  if status ~= 200 then
    io.stderr:write("track answered " .. status .. "\n")
  end
end

-- POST /api/v1/verify at a fixed total rate: each of the N connections waits N/rate seconds
-- between its requests (wrk's delay()), so the server sees about `rate` requests a second.
wrk.method = "POST"
wrk.body = '{"endpoint":"/bench","method":"GET"}'
wrk.headers["Authorization"] = "Bearer " .. os.getenv("TALLY_BENCH_KEY")
wrk.headers["Content-Type"] = "application/json"

local rate = tonumber(os.getenv("TALLY_BENCH_RATE"))
local connections = tonumber(os.getenv("TALLY_BENCH_CONNECTIONS"))
local gap_ms = 1000 * connections / rate

function delay()
  -- Jitter keeps the connections from firing in lockstep.
  return gap_ms * (0.5 + math.random())
end

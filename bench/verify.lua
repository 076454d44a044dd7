-- POST /api/v1/verify as fast as the connections go.
wrk.method = "POST"
wrk.body = '{"endpoint":"/bench","method":"GET"}'
wrk.headers["Authorization"] = "Bearer " .. os.getenv("TALLY_BENCH_KEY")
wrk.headers["Content-Type"] = "application/json"

function response(status)
  if status ~= 200 then
    io.stderr:write("verify answered " .. status .. "\n")
  end
end

-- wrk script: POST one custom event per request (bench/server-ingest.sh).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer bench-token-0123456789abcdef"
local n = 0
request = function()
  n = n + 1
  return wrk.format(nil, "/api/v1/events", nil,
    '{"name":"deploy","source":"bench","description":"build ' .. n .. '","scope":{"namespace":"ns-' .. (n % 50) .. '"}}')
end

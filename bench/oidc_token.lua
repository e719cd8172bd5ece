-- wrk script for bench/run.sh's token-endpoint rows: every request presents a code or a
-- refresh token no other request used (each works once). BENCH_TOKENS names a file with one
-- form body per line; thread k of n takes lines k, k+n, ...; a thread that runs out sends its
-- last line again, which is refused (400), so the count of 400s says the file was short.
-- BENCH_AUTH is the Authorization header (client_secret_basic).
local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

local lines = {}
local next_line = 1
counts = {}

local function load()
  local all = {}
  for line in io.lines(os.getenv("BENCH_TOKENS")) do
    table.insert(all, line)
  end
  local step = tonumber(os.getenv("BENCH_THREADS") or "1")
  local i = id + 1
  while i <= #all do
    table.insert(lines, all[i])
    i = i + step
  end
end

function request()
  if #lines == 0 then load() end
  local body = lines[math.min(next_line, #lines)]
  next_line = next_line + 1
  return wrk.format("POST", "/oidc/token", {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Authorization"] = os.getenv("BENCH_AUTH"),
  }, body)
end

function response(status, headers, body)
  counts[status] = (counts[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("counts")) do
      total[status] = (total[status] or 0) + n
    end
  end
  for status, n in pairs(total) do
    io.write(string.format("status %d: %d\n", status, n))
  end
end

-- wrk script for bench/run.sh's second-step row: every request is a different user's
-- half-done sign-in finished with that user's right code (a code works once, so no request
-- may repeat another). BENCH_STEPS names a file of lines "COOKIE<TAB>BODY"; thread k of n
-- takes lines k, k+n, k+2n, ... When a thread runs out it sends its last line again: those
-- answers are refused (200, the form again), and the count of 200s says the file was short.
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
  for line in io.lines(os.getenv("BENCH_STEPS")) do
    table.insert(all, line)
  end
  local step = tonumber(os.getenv("BENCH_THREADS") or "1")
  local i = id + 1
  while i <= #all do
    local cookie, body = all[i]:match("^([^\t]*)\t(.*)$")
    table.insert(lines, { cookie = cookie, body = body })
    i = i + step
  end
end

function request()
  if #lines == 0 then load() end
  local line = lines[math.min(next_line, #lines)]
  next_line = next_line + 1
  return wrk.format("POST", "/login/second-factor",
    { ["Content-Type"] = "application/x-www-form-urlencoded", ["Cookie"] = line.cookie }, line.body)
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

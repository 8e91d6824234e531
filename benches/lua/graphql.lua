-- wrk script: POST a GraphQL request body, checking every response.
--
--   wrk ... -s graphql.lua URL -- MODE BODY_FILE [IDS_FILE]
--
-- MODE
--   fixed   the body as it is
--   ids     each request replaces __ID__ in the body by an id picked at random from IDS_FILE
--           (one per line)
--   unique  each request replaces __N__ by a value unique to this run, thread and request
--           (for creates: unique emails)
-- The bearer token is read from $BENCH_TOKEN (none when empty). A response counts as bad when
-- its status is not 200 or its body has "errors". done() prints one line, `BENCHJSON {...}`,
-- with the totals and the latency percentiles (microseconds).

local mode, body, ids, prefix, suffix
-- Whole HTTP requests, made once in init() so that each request costs wrk a table lookup, not
-- Lua string building: the load generator shares the machine with the servers it measures.
local prepared = {}
-- Globals, not locals: setup() sets thread_id and done() reads bad through thread:set/get.
counter, bad, thread_id = 0, 0, 0
local threads = {}
local next_thread = 0

local function read_file(path)
  local f = assert(io.open(path, "rb"), "cannot open " .. tostring(path))
  local s = f:read("*a")
  f:close()
  return s
end

function setup(thread)
  next_thread = next_thread + 1
  thread:set("thread_id", next_thread)
  table.insert(threads, thread)
end

function init(args)
  mode, body = args[1], read_file(args[2])
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  local token = os.getenv("BENCH_TOKEN")
  if token and token ~= "" then
    wrk.headers["Authorization"] = "Bearer " .. token
  end
  math.randomseed(os.time() * 1000 + (thread_id or 0))
  if mode == "ids" then
    ids = {}
    for line in read_file(args[3]):gmatch("[^\r\n]+") do
      ids[#ids + 1] = line
    end
    assert(#ids > 0, "no ids in " .. args[3])
    local at = assert(body:find("__ID__", 1, true), "no __ID__ in the body")
    prefix, suffix = body:sub(1, at - 1), body:sub(at + 6)
    for i, id in ipairs(ids) do
      prepared[i] = wrk.format(nil, nil, nil, prefix .. id .. suffix)
    end
  elseif mode == "unique" then
    local at = assert(body:find("__N__", 1, true), "no __N__ in the body")
    prefix, suffix = body:sub(1, at - 1), body:sub(at + 5)
    run_tag = os.getenv("BENCH_RUN_TAG") or tostring(os.time())
  else
    wrk.body = body
    prepared[1] = wrk.format()
  end
end

function request()
  if mode == "ids" then
    return prepared[math.random(#prepared)]
  elseif mode == "unique" then
    counter = counter + 1
    return wrk.format(nil, nil, nil,
      prefix .. run_tag .. "-" .. thread_id .. "-" .. counter .. suffix)
  end
  return prepared[1]
end

function response(status, headers, body)
  if status ~= 200 or body:find('"errors"', 1, true) then
    bad = bad + 1
    if bad <= 3 then
      io.stderr:write("bad response (" .. status .. "): " .. body:sub(1, 300) .. "\n")
    end
  end
end

function done(summary, latency, requests)
  local bad_total = 0
  for _, t in ipairs(threads) do
    bad_total = bad_total + (t:get("bad") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests":%d,"duration_us":%d,"rps":%.3f,"bad":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"mean":%.1f,"p50":%d,"p90":%d,"p99":%d,"max":%d}}\n',
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6), bad_total,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max))
end

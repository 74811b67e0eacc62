-- wrk script for every bench scenario; bench/run.ts sets the environment:
--   BENCH_DATA      a Lua file returning {tokens = {[0] = big, ...}, users, per_user, doomed_base, threads}
--   BENCH_SCENARIO  list | get | create | put | patch | delete | mixed | warm | page-big | page-small
--   BENCH_RATE      optional: a fixed total rate (requests/s) spread over the connections
--   BENCH_CONNECTIONS the connection count (for BENCH_RATE)
-- Tasks are laid out by bench/seed.ts: reader u (1..users) owns ids (u-1)*per_user+1 .. u*per_user;
-- writers (users+1..2*users) create, and doomed task doomed_base+k belongs to writer users + k % users + 1.

local data = dofile(os.getenv("BENCH_DATA"))
local scenario = os.getenv("BENCH_SCENARIO")
local rate = tonumber(os.getenv("BENCH_RATE") or "")
local connections = tonumber(os.getenv("BENCH_CONNECTIONS") or "64")

local mixes = {
  mixed = { { "list", 40 }, { "get", 40 }, { "create", 5 }, { "put", 5 }, { "patch", 5 }, { "delete", 5 } },
  -- The warm-up of runs that delete: every kind but delete, which would spend their doomed tasks.
  warm = { { "list", 40 }, { "get", 40 }, { "create", 7 }, { "put", 7 }, { "patch", 6 } },
}

local created_body = '{"title":"Bench title","description":"Written by the bench","completed":false}'
local put_body = '{"title":"Bench title","description":"Written by the bench","completed":true}'
local patch_body = '{"completed":true}'

local thread_count = 0
function setup(thread)
  thread:set("thread_index", thread_count)
  thread_count = thread_count + 1
end

local headers = {}
local next_doomed = 0

function init(args)
  math.randomseed(1000 + (thread_index or 0))
  for u = 0, 2 * data.users do
    headers[u] = { ["Authorization"] = "Bearer " .. data.tokens[u], ["Content-Type"] = "application/json" }
  end
  next_doomed = thread_index or 0
end

local function own_task()
  local u = math.random(1, data.users)
  return u, (u - 1) * data.per_user + math.random(1, data.per_user)
end

local function build(kind)
  if kind == "list" then
    return wrk.format("GET", "/api/tasks", headers[math.random(1, data.users)])
  elseif kind == "get" then
    local u, id = own_task()
    return wrk.format("GET", "/api/tasks/" .. id, headers[u])
  elseif kind == "create" then
    return wrk.format("POST", "/api/tasks", headers[data.users + math.random(1, data.users)], created_body)
  elseif kind == "put" then
    local u, id = own_task()
    return wrk.format("PUT", "/api/tasks/" .. id, headers[u], put_body)
  elseif kind == "patch" then
    local u, id = own_task()
    return wrk.format("PATCH", "/api/tasks/" .. id .. "/complete", headers[u], patch_body)
  elseif kind == "delete" then
    local k = next_doomed
    next_doomed = next_doomed + data.threads
    return wrk.format("DELETE", "/api/tasks/" .. (data.doomed_base + k), headers[data.users + k % data.users + 1])
  elseif kind == "page-big" then
    return wrk.format("GET", "/api/tasks?limit=50", headers[0])
  elseif kind == "page-small" then
    return wrk.format("GET", "/api/tasks?limit=50", headers[math.random(1, data.users)])
  end
  error("unknown scenario " .. tostring(kind))
end

function request()
  local mix = mixes[scenario]
  if not mix then return build(scenario) end
  local r = math.random(1, 100)
  for _, entry in ipairs(mix) do
    r = r - entry[2]
    if r <= 0 then return build(entry[1]) end
  end
  return build(mix[1][1])
end

if rate then
  -- Each connection waits connections/rate seconds between requests on average: about `rate` in
  -- total. The waits are drawn at random (exponentially, as between independent users' clicks):
  -- equal waits keep every connection in step, and the service would see bursts of `connections`
  -- requests at once instead of a steady rate.
  local pause = connections * 1000 / rate
  function delay() return -math.log(1 - math.random()) * pause end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,' ..
    '"p50_us":%d,"p99_us":%d,"mean_us":%.1f,"max_us":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.mean, latency.max))
end

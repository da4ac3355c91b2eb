-- wrk script of bench/mixed_load.py: customers' page views or their pages' live polls, at a fixed rate.
--
--   wrk -t1 -c64 -d60s --timeout 10s -s bench/mixed_load.lua http://127.0.0.1:PORT -- poll FILE 100
--
-- Arguments after "--": the kind ("poll" or "view"), a file with one customer page a line, and the
-- requests per second. A line is "<path>\t<client address>\t<page path>": the path to request (the
-- page, or its live URL with the stamp of what the browser shows), the customer's address (sent as
-- X-Forwarded-For: the service runs with NUM_PROXIES=1, as behind a proxy), and the page's own path.
--
-- Constant rate, not a closed loop: request k is due at start + k / rate whatever the answers before
-- it took (delay() hands each connection the next free slot of the schedule), so a slow answer does
-- not hold back the requests after it. A request that finds every connection busy at its slot is
-- sent as soon as one frees up and counted as late, with the worst delay: with no late request the
-- latencies are free of coordinated omission. The pages are taken in turn, so each page is asked
-- for once every (pages / rate) seconds: 1,000 pages at 100 polls/s poll every 10 s each.
--
-- Polls behave as htmx does on the page: while nothing changed the answer is 204 and the stamp
-- stays; a 200 fragment carries the next poll URL (new stamp), which the page uses from then on.
-- One thread only (-t1): the schedule and the pages are per thread.

local ffi = require("ffi")
ffi.cdef([[
typedef struct { long tv_sec; long tv_nsec; } mixed_load_timespec;
int clock_gettime(int clock, mixed_load_timespec *ts);
]])
local CLOCK_MONOTONIC = 1
local clock = ffi.new("mixed_load_timespec")

local function now_ms()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, clock)
  return tonumber(clock.tv_sec) * 1000 + tonumber(clock.tv_nsec) / 1e6
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

local pages, by_token = {}, {}
local cursor = 0
local interval_ms, next_due = nil, nil

function init(args)
  kind = args[1]
  interval_ms = 1000 / tonumber(args[3])
  opening = tonumber(args[4])
  for line in io.lines(args[2]) do
    local path, address, page = line:match("^(%S+)\t(%S+)\t(%S+)$")
    local entry = { path = path, address = address, page = page }
    pages[#pages + 1] = entry
    by_token[page:match("^/track/([^/]+)/")] = entry
  end
  statuses = {}
  late, worst_late_ms, fragments, unmatched = 0, 0, 0, 0
end

function delay()
  if opening > 0 then
    -- Each connection's first request goes at once: a connection opened and left idle would hold
    -- a gunicorn thread until its first request comes (gthread waits up to 5 s for it).
    opening = opening - 1
    return 0
  end
  local now = now_ms()
  if next_due == nil then
    next_due = now
  end
  local due = next_due
  next_due = next_due + interval_ms
  if now - due > 1 then
    late = late + 1
    worst_late_ms = math.max(worst_late_ms, now - due)
    return 0
  end
  return math.max(0, due - now)
end

function request()
  cursor = cursor % #pages + 1
  local page = pages[cursor]
  local headers = {
    ["X-Forwarded-For"] = page.address,
    ["Accept-Language"] = "en-GB,en;q=0.9",
    ["User-Agent"] = "Mozilla/5.0 (bench/mixed_load.lua)",
  }
  if kind == "poll" then
    -- What htmx sends with its GET.
    headers["Accept"] = "*/*"
    headers["HX-Request"] = "true"
    headers["HX-Trigger"] = "live"
    headers["HX-Target"] = "live"
    headers["HX-Current-URL"] = "http://" .. wrk.host .. ":" .. tostring(wrk.port) .. page.page
  else
    headers["Accept"] = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
  end
  return wrk.format("GET", page.path, headers)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if kind == "poll" and status == 200 then
    fragments = fragments + 1
    local url = body:match('hx%-get="([^"]+)"')
    local entry = url and by_token[url:match("^/track/([^/]+)/live")]
    if entry then
      entry.path = url:gsub("&amp;", "&")
    else
      unmatched = unmatched + 1
    end
  end
end

function done(summary, latency, requests)
  local thread = threads[1]
  local counts = {}
  for status, count in pairs(thread:get("statuses")) do
    counts[#counts + 1] = string.format('"%d": %d', status, count)
  end
  local cuts = {}
  for _, p in ipairs({ 50, 90, 95, 99, 99.9 }) do
    cuts[#cuts + 1] = string.format('"%s": %d', tostring(p), latency:percentile(p))
  end
  local e = summary.errors
  -- One line for bench/mixed_load.py to read; latencies in microseconds.
  io.write(string.format(
    'MIXED-LOAD {"kind": "%s", "requests": %d, "duration_us": %d, "percentiles_us": {%s}, "mean_us": %.0f, '
      .. '"max_us": %d, "statuses": {%s}, "errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d, '
      .. '"status": %d}, "late": %d, "worst_late_ms": %.1f, "fragments": %d, "unmatched": %d}\n',
    thread:get("kind"), summary.requests, summary.duration, table.concat(cuts, ", "), latency.mean, latency.max,
    table.concat(counts, ", "), e.connect, e.read, e.write, e.timeout, e.status, thread:get("late"),
    thread:get("worst_late_ms"), thread:get("fragments"), thread:get("unmatched")
  ))
end

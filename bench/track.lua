-- wrk script for bench/ingest.py: varied single events (or batches of BATCH events) to POST /track.
-- Sites come from the SITES environment variable (comma-separated ids), hosts are "<n>.bench.example".
local sites = {}
for id in string.gmatch(os.getenv("SITES") or "", "[^,]+") do table.insert(sites, id) end
local batch = tonumber(os.getenv("BATCH") or "1")
local uas = {
  "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
  "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
  "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
  "Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1",
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
}
local referrers = {"", "https://www.google.com/", "https://news.ycombinator.com/", "https://t.co/abc",
  "https://www.bing.com/search?q=analytics", "https://github.com/", "https://duckduckgo.com/", "https://www.reddit.com/r/saas/"}
local paths = {"/", "/pricing", "/blog/launch", "/docs/install", "/signup", "/features", "/about"}
local utms = {"", "?utm_source=newsletter&utm_medium=email", "?utm_source=twitter&utm_campaign=launch", "?gclid=abc123"}
local counter = 0
local thread_id = 0
local threads = {}

function setup(thread)
  thread_id = thread_id + 1
  thread:set("tid", thread_id)
  table.insert(threads, thread)
end

function init(args)
  accepted = 0
  failed = 0
  math.randomseed(os.time() + (tid or 0) * 7919)
end

local function pick(t) return t[math.random(#t)] end

local function one_event()
  counter = counter + 1
  local site_index = (math.random(100) <= 70) and 1 or math.random(#sites)
  local site = sites[site_index]
  return string.format(
    '{"website_id":"%s","page_url":"https://%d.bench.example%s%s","referrer":"%s","event_id":"%d-%d-%d","visitor_id":"v%d"}',
    site, site_index, pick(paths), pick(utms), pick(referrers), tid or 0, counter, math.random(1000000000),
    math.random(50000))
end

function request()
  local body
  if batch == 1 then
    body = one_event()
  else
    local events = {}
    for i = 1, batch do events[i] = one_event() end
    body = "[" .. table.concat(events, ",") .. "]"
  end
  local ip = string.format("%d.%d.%d.%d", math.random(1, 223), math.random(0, 255), math.random(0, 255), math.random(1, 254))
  return wrk.format("POST", "/track", {
    ["Content-Type"] = "application/json",
    ["User-Agent"] = pick(uas),
    ["X-Forwarded-For"] = ip,
  }, body)
end

function response(status, headers, body)
  if status == 202 then accepted = accepted + 1 else failed = failed + 1 end
end

function done(summary, latency, requests)
  local ok, bad = 0, 0
  for _, t in ipairs(threads) do
    ok = ok + (t:get("accepted") or 0)
    bad = bad + (t:get("failed") or 0)
  end
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"accepted":%d,"failed":%d,"errors":%d,"p50_us":%d,"p95_us":%d,"p99_us":%d}\n',
    summary.requests, summary.duration, ok, bad,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99)))
end

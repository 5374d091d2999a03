-- Replay pre-signed MLflow deliveries with wrk (bench/intake.py --generator wrk).
--
--   wrk -t T -c C -d 10s --timeout 30s -s bench/wrk/replay.lua URL -- FILE T
--
-- FILE holds one delivery a line: "<delivery id>\t<timestamp>\t<signature>\t<JSON body>".
-- Thread k (0-based) sends lines k, k+T, k+2T, ... in order, so no two threads send the
-- same delivery; the raw requests are built once in init(), request() only indexes them.
-- A thread that runs out of lines starts over (each repeat is a duplicate delivery: still a
-- 200, but cheaper for the server); done() reports how many, and bench/intake.py sizes FILE
-- so that none happen. done() prints one line "WRK_JSON {...}" for bench/intake.py.

local threads = {}
local counter = 0

function setup(thread)
   thread:set("id", counter)
   counter = counter + 1
   table.insert(threads, thread)
end

local reqs = {}
local n = 0
sent = 0 -- globals: read by done() through thread:get()
lines = 0

function init(args)
   local path, nthreads = args[1], tonumber(args[2])
   local mine = id or 0
   local k = 0
   for line in io.lines(path) do
      if k % nthreads == mine then
         local did, ts, sig, body = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
         n = n + 1
         reqs[n] = wrk.format("POST", wrk.path, {
            ["Content-Type"] = "application/json",
            ["X-MLflow-Delivery-Id"] = did,
            ["X-MLflow-Timestamp"] = ts,
            ["X-MLflow-Signature"] = sig,
         }, body)
      end
      k = k + 1
   end
   lines = n
   if n == 0 then
      error("replay.lua: no deliveries for thread " .. mine .. " in " .. path)
   end
end

function request()
   sent = sent + 1
   return reqs[(sent - 1) % n + 1]
end

function done(summary, latency, requests)
   local total_sent, dups, supply = 0, 0, 0
   for _, thread in ipairs(threads) do
      local s, l = thread:get("sent"), thread:get("lines")
      if thread:get("id") == 0 then
         s = s - 1 -- wrk calls thread 0's request() once to check the script: never sent
      end
      total_sent = total_sent + s
      supply = supply + l
      if s > l then
         dups = dups + (s - l)
      end
   end
   local e = summary.errors
   io.write(string.format(
      'WRK_JSON {"duration_us": %d, "requests": %d, "bytes": %d, "sent": %d, '
      .. '"duplicates": %d, "supply": %d, "threads": %d, '
      .. '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, '
      .. '"latency_us": {"p50": %d, "p90": %d, "p99": %d, "max": %d, "mean": %.1f}}\n',
      summary.duration, summary.requests, summary.bytes, total_sent, dups, supply,
      #threads, e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency.max, latency.mean))
end

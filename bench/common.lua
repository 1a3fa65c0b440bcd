-- Shared by every scenario script (loaded with dofile into wrk's main state
-- and into each thread's state). It gives each thread an index and a random
-- seed of its own, reads line files, and prints one machine-readable summary
-- line ("BENCHJSON {...}") that cmd/bench parses; wrk's own text is ignored.

local threads = {}
local counter = 1

-- setup runs in the main state once per thread, before init.
function setup(thread)
   thread:set("thread_index", counter)
   counter = counter + 1
   table.insert(threads, thread)
end

-- seed_thread gives this thread's math.random a seed of its own, so threads
-- do not replay the same id sequence.
function seed_thread()
   math.randomseed(os.time() * 1000 + (thread_index or 0))
end

-- read_lines returns the non-empty lines of path as an array.
function read_lines(path)
   local lines = {}
   for line in io.lines(path) do
      if line ~= "" then lines[#lines + 1] = line end
   end
   assert(#lines > 0, "no lines in " .. path)
   return lines
end

-- json_headers are the headers of a request with a JSON body.
json_headers = { ["Content-Type"] = "application/json" }

function done(summary, latency, requests)
   -- Threads may count X-Cache values in response(); add them up.
   local cache = {}
   for _, t in ipairs(threads) do
      for _, k in ipairs({ "HIT", "MISS", "STALE", "BYPASS" }) do
         local n = t:get("xcache_" .. k)
         if n then cache[k] = (cache[k] or 0) + n end
      end
   end
   local parts = {}
   for k, n in pairs(cache) do parts[#parts + 1] = string.format('"%s":%d', k, n) end
   local e = summary.errors
   io.write(string.format(
      'BENCHJSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
      '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f},"xcache":{%s}}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency.max, latency.mean, table.concat(parts, ",")))
end

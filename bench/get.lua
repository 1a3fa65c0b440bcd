-- GET of paths read from a file, one per line.
--   wrk ... -s bench/get.lua URL -- <paths file> [seq]
-- Random order by default; "seq" walks the file once in order (each thread
-- its own slice), so every path is requested at most once per run: the
-- uncached-read scenario uses it to ask only for ids nobody has read yet.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local paths, seq, first_index, next_index, last_index

function init(args)
   seed_thread()
   paths = read_lines(args[1])
   -- wrk calls request() once before the run to check it, so in "seq"
   -- mode the run starts on the second line of the slice.
   seq = args[2] == "seq"
   -- Threads split the file into contiguous slices.
   local nthreads = tonumber(args[3] or "1")
   local slice = math.floor(#paths / nthreads)
   first_index = (thread_index - 1) * slice + 1
   next_index, last_index = first_index, first_index + slice - 1
end

function request()
   local path
   if seq then
      path = paths[next_index]
      -- Past the end the slice wraps: those reads are hits, and the
      -- X-Cache count of get_counted.lua shows it.
      next_index = next_index < last_index and next_index + 1 or first_index
   else
      path = paths[math.random(#paths)]
   end
   return wrk.format("GET", path)
end

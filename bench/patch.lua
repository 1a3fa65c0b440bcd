-- PATCH of a random analysis from an id-path file with a title no request
-- has sent before, so every PATCH really changes the row (a no-op PATCH
-- would skip the write-through being measured).
--   wrk ... -s bench/patch.lua URL -- <paths file>
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local paths, n = nil, 0

function init(args)
   seed_thread()
   paths = read_lines(args[1])
end

function request()
   n = n + 1
   local body = string.format('{"title":"bench %d-%d","status":"processing"}', thread_index, n)
   return wrk.format("PATCH", paths[math.random(#paths)], json_headers, body)
end

-- get.lua plus a count of the X-Cache answers, reported in the summary, so a
-- scenario can show what it really measured (e.g. the share of misses).
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "get.lua")

xcache_HIT, xcache_MISS, xcache_STALE, xcache_BYPASS = 0, 0, 0, 0

function response(status, headers, body)
   local v = headers["X-Cache"]
   if v == "HIT" then xcache_HIT = xcache_HIT + 1
   elseif v == "MISS" then xcache_MISS = xcache_MISS + 1
   elseif v == "STALE" then xcache_STALE = xcache_STALE + 1
   elseif v == "BYPASS" then xcache_BYPASS = xcache_BYPASS + 1
   end
end

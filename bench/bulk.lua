-- POST /api/v1/analyses/bulk with a body of N analyses (default 1000)
-- without client ids: every request creates N new analyses (write-behind).
-- The body is built once per thread, so the load generator spends nothing on it.
--   wrk ... -s bench/bulk.lua URL -- <owner uuid> [items]
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local body

function init(args)
   local owner, items = args[1], tonumber(args[2] or "1000")
   local parts = {}
   for i = 1, items do
      parts[i] = string.format(
         '{"owner_id":"%s","url":"https://example.com/bulk/%d","title":"bulk %d","status":"completed","score":0.25,"tags":["bench","bulk"]}',
         owner, i, i)
   end
   body = '{"items":[' .. table.concat(parts, ",") .. ']}'
end

function request()
   return wrk.format("POST", "/api/v1/analyses/bulk", json_headers, body)
end

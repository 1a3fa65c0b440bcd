-- POST /api/v1/analyses, one analysis per request (write-through): the
-- one-by-one counterpart of bulk.lua's items.
--   wrk ... -s bench/post.lua URL -- <owner uuid>
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local owner, n = nil, 0

function init(args)
   seed_thread()
   owner = args[1]
end

function request()
   n = n + 1
   local body = string.format(
      '{"owner_id":"%s","url":"https://example.com/one/%d/%d","title":"one %d-%d","status":"completed","score":0.5,"tags":["bench","one"]}',
      owner, thread_index, n, thread_index, n)
   return wrk.format("POST", "/api/v1/analyses", json_headers, body)
end

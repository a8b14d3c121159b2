-- wrk script: realistic BitTorrent HTTP announces against opentracker.
-- Usage: wrk ... -s announce.lua http://127.0.0.1:PORT -- WHITELIST_FILE
-- Every request names a whitelisted info_hash (round robin) and a fresh
-- peer_id/port, so the tracker keeps inserting peers into swarms and
-- builds peer lists, instead of answering the same cached swarm.

local threads, next_id = {}, 0

function setup(thread)
  -- distinct id per thread so threads do not announce identical peers
  thread:set("tid", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

local hashes, n, i = {}, 0, 0

local function urlencode_hex(hex)
  -- 40 hex digits -> %XX for each of the 20 raw bytes (always safe to escape)
  return (hex:gsub("(%x%x)", "%%%1"))
end

function init(args)
  local f = assert(io.open(args[1], "r"), "cannot open whitelist " .. tostring(args[1]))
  for line in f:lines() do
    if #line == 40 then
      n = n + 1
      hashes[n] = urlencode_hex(line)
    end
  end
  f:close()
  assert(n > 0, "empty whitelist")
  -- spread threads over the hash list
  i = (tid * 7919) % n
end

function request()
  i = i + 1
  local h = hashes[(i % n) + 1]
  -- 20-byte peer_id in Azureus style: "-PS0001-" + 12 digits
  local peer_id = string.format("-PS0001-%02d%010d", tid % 100, i % 10000000000)
  local port = 1024 + (i * 13 + tid) % 64000
  -- mostly regular announces, a few "started"/"completed" as real clients send
  local ev = ""
  if i % 20 == 0 then ev = "&event=started" elseif i % 97 == 0 then ev = "&event=completed" end
  local path = "/announce?info_hash=" .. h ..
               "&peer_id=" .. peer_id ..
               "&port=" .. port ..
               "&uploaded=0&downloaded=0&left=0&compact=1&numwant=50" .. ev
  return wrk.format("GET", path)
end

-- Optional (BENCH_VERIFY=1): inspect every body. Defining response() makes
-- wrk hand each body to Lua, which costs throughput, so it is opt-in.
if os.getenv("BENCH_VERIFY") == "1" then
  bad, ok = 0, 0
  function response(status, headers, body)
    if status ~= 200 or body:sub(1, 1) ~= "d" or body:find("failure reason", 1, true) then
      bad = bad + 1
    else
      ok = ok + 1
    end
  end
  function done(summary, latency, requests)
    local b, o = 0, 0
    for _, t in ipairs(threads) do b = b + t:get("bad"); o = o + t:get("ok") end
    io.stderr:write(string.format("verify: ok %d bad %d\n", o, b))
    io.stdout:write(string.format("verify_bad %d\n", b))
  end
end

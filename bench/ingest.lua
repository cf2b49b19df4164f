-- ingest.lua - wrk script for bench/ingest.sh: POST distinct gzip'd Sentry envelopes
--
-- usage: wrk -tT -cC -dD --latency -s bench/ingest.lua http://127.0.0.1:PORT \
--            -- PACK_PREFIX KEYS_FILE T
--   PACK_PREFIX.pack / PACK_PREFIX.idx  envelopes from bench/gen_envelopes.py ("off len" lines)
--   KEYS_FILE                           one "project_id public_key" line per project
--   T                                   the -t value (threads split the sequence between them)
-- Environment: INGEST_RATE=R paces the whole run to about R requests/s (each thread sends on
-- its own schedule of R/T per second through wrk's delay(); a request waits for a free
-- connection when all are busy, so latency is measured from the send, as wrk does). Unset
-- or 0: closed loop, every connection sends as soon as its previous answer arrives.
--
-- Request g (over all threads, thread i sends g = i, i+T, i+2T, ...) posts envelope g mod K
-- to project (g div K) mod P, so the first K*P requests are distinct (project, profile id)
-- pairs: the store refuses a profile id twice in one project (store.conflict) and keeps the
-- record queued for replay, which would stall the end-to-end count. done() reports whether
-- the run wrapped.
--
-- done() prints machine-readable lines for ingest.sh:
--   RESULT requests=N duration_us=N s200=N s429=N sother=N conn_err=N read_err=N
--          write_err=N timeouts=N p50_us=N p90_us=N p99_us=N max_us=N sent=N distinct=N

local threads = {}
local counter = 0

function setup(thread)
   thread:set("tid", counter)
   counter = counter + 1
   table.insert(threads, thread)
end

local bodies = {}   -- gzip'd envelopes
local prefixes = {} -- per project: request line and headers up to Content-Length
local T, n
K, P = 0, 0 -- globals: done() reads them with thread:get
s200, s429, sother, sent = 0, 0, 0, 0

local function read_all(path)
   local f = assert(io.open(path, "rb"))
   local d = f:read("*a")
   f:close()
   return d
end

function init(args)
   local prefix, keys = args[1], args[2]
   T = tonumber(args[3] or "1")
   local pack = read_all(prefix .. ".pack")
   for line in io.lines(prefix .. ".idx") do
      local off, len = line:match("^(%d+) (%d+)$")
      off, len = tonumber(off), tonumber(len)
      bodies[#bodies + 1] = pack:sub(off + 1, off + len)
   end
   pack = nil
   local host = wrk.host .. ":" .. tostring(wrk.port)
   for line in io.lines(keys) do
      local pid, key = line:match("^(%d+) (%x+)$")
      if pid then
         prefixes[#prefixes + 1] = "POST /api/" .. pid .. "/envelope/?sentry_key=" .. key ..
            "&sentry_version=7&sentry_client=sentry.cocoa%2F8.36.0 HTTP/1.1\r\n" ..
            "Host: " .. host .. "\r\n" ..
            "User-Agent: sentry.cocoa/8.36.0\r\n" ..
            "Content-Type: application/x-sentry-envelope\r\n" ..
            "Content-Encoding: gzip\r\n"
      end
   end
   K, P = #bodies, #prefixes
   assert(K > 0 and P > 0, "ingest.lua: no envelopes or no projects")
   n = tid
end

local rate = tonumber(os.getenv("INGEST_RATE") or "0") or 0
if rate > 0 then
   local ffi = require("ffi")
   ffi.cdef [[
      typedef struct { long tv_sec; long tv_nsec; } ingest_ts;
      int clock_gettime(int clk, ingest_ts *ts);
   ]]
   local ts = ffi.new("ingest_ts")
   local function now_ms()
      ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
      return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
   end
   local next_ms, step_ms
   -- called by wrk before each request: how long to wait before sending it
   function delay()
      local t = now_ms()
      if not next_ms then
         step_ms = 1000 * T / rate
         next_ms = t + step_ms * tid / T -- threads interleave their schedules
      end
      local d = next_ms - t
      next_ms = next_ms + step_ms
      if d < 0 then
         if d < -1000 then next_ms = t + step_ms end -- far behind: do not burst to catch up
         return 0
      end
      return math.floor(d)
   end
end

function request()
   local g = n
   n = n + T
   sent = sent + 1
   local b = bodies[(g % K) + 1]
   local p = prefixes[(math.floor(g / K) % P) + 1]
   return p .. "Content-Length: " .. #b .. "\r\n\r\n" .. b
end

function response(status, headers, body)
   if status == 200 then
      s200 = s200 + 1
   elseif status == 429 then
      s429 = s429 + 1
   else
      sother = sother + 1
      if sother <= 3 then
         io.stderr:write("ingest.lua: status " .. status .. ": " .. tostring(body) .. "\n")
      end
   end
end

function done(summary, latency, requests)
   local a, b, c, s = 0, 0, 0, 0
   local distinct = 0
   for _, t in ipairs(threads) do
      a = a + (t:get("s200") or 0)
      b = b + (t:get("s429") or 0)
      c = c + (t:get("sother") or 0)
      s = s + (t:get("sent") or 0)
      local k, p = t:get("K"), t:get("P")
      if k and p then distinct = k * p end
   end
   local e = summary.errors
   io.write(string.format("RESULT requests=%d duration_us=%d s200=%d s429=%d sother=%d " ..
      "conn_err=%d read_err=%d write_err=%d timeouts=%d p50_us=%d p90_us=%d p99_us=%d " ..
      "max_us=%d sent=%d distinct=%d\n",
      summary.requests, summary.duration, a, b, c, e.connect, e.read, e.write, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
      s, distinct))
end

-- wrk script for the load harness: one text-message webhook per request, each with a unique
-- message id and chat, stamped with the wall-clock microsecond it was built (`t<MICROS>`) so the
-- stand-in Whapi.Cloud can measure webhook-in to call-out latency. With LOAD_DELAY_MS set, each
-- connection waits that long between an answer and its next request: a paced load instead of a
-- saturating one.
local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_usec; } load_timeval;
int gettimeofday(load_timeval *tv, void *tz);
]]

local run = os.getenv("LOAD_RUN") or "r"
local pause = tonumber(os.getenv("LOAD_DELAY_MS") or "0")
local threads = 0
local tv = ffi.new("load_timeval")
local sent = 0

function setup(thread)
  thread:set("thread_id", threads)
  threads = threads + 1
end

function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

-- Defined only for a paced load: where it exists, wrk puts every request behind a timer.
if pause > 0 then
  function delay()
    return pause
  end
end

function request()
  sent = sent + 1
  ffi.C.gettimeofday(tv, nil)
  local secs = tonumber(tv.tv_sec)
  local micros = secs * 1000000 + tonumber(tv.tv_usec)
  local id = string.format("%s-%d-%d", run, thread_id, sent)
  local phone = 4915100000000 + (thread_id * 7919 + sent) % 5000
  local body = string.format(
    '{"messages":[{"id":"%s","from_me":false,"type":"text","chat_id":"%d@s.whatsapp.net",' ..
    '"timestamp":%d,"source":"mobile","text":{"body":"Where is my parcel 4242? m%s t%.0f"},' ..
    '"from":"%d","from_name":"Anna"}],"event":{"type":"messages","event":"post"},' ..
    '"channel_id":"LOAD-RUN"}',
    id, phone, secs, id, micros, phone)
  return wrk.format(nil, nil, nil, body)
end

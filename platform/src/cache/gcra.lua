-- GCRA (the generic cell rate algorithm) for one limited subject, run atomically by Redis so every
-- process sharing the key counts against one budget, measured on the Redis server's clock.
-- KEYS[1]: the subject's theoretical arrival time (TAT), microseconds on that clock.
-- ARGV[1]: the time one call costs (the emission interval), microseconds.
-- ARGV[2]: how far the TAT may run ahead of now (interval x burst), microseconds.
-- Returns 0 when the call is allowed (and counted), else the microseconds until one would be.
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now) or now
if tat < now then
  tat = now
end
local wait = tat - now + interval - tolerance
if wait > 0 then
  return wait
end
local next_tat = tat + interval
-- The key lives exactly as long as it holds a debt; an idle subject leaves nothing behind.
redis.call('SET', KEYS[1], string.format('%d', next_tat), 'PX',
  math.max(1, math.ceil((next_tat - now) / 1000)))
return 0

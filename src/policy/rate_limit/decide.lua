-- weir's rate-limit decision: the sliding window of src/policy/rate_limit/window.rs (11
-- slots of per/10, the oldest counted in full) and, when burst < limit, a GCRA, on the
-- Redis server's clock, so that every weir process counts on the same time line.
-- KEYS[1]: the key's hash. ARGV: limit, per (ms), burst.
-- Returns { admitted (0|1), remaining, wait (ms) }.
local key = KEYS[1]
local limit = tonumber(ARGV[1])
local per_ms = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local time = redis.call('TIME')
local now_us = tonumber(time[1]) * 1000000 + tonumber(time[2])
local now_ms = math.floor(now_us / 1000)
local slot_ms = math.max(math.ceil(per_ms / 10), 1)
local stored = redis.call('HMGET', key, 'n', 't', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '10')
local current = math.floor(now_ms / slot_ms)
local newest = tonumber(stored[1]) or current
if newest > current then current = newest end
local tat = tonumber(stored[2]) or 0
local counts = {}
for i = 0, 10 do counts[i] = tonumber(stored[i + 3]) or 0 end
for step = 1, math.min(current - newest, 11) do counts[(newest + step) % 11] = 0 end
local counted = 0
for i = 0, 10 do counted = counted + counts[i] end
local oldest = current - 10
local window_ok = counted < limit
local smoothing = burst < limit
local interval = math.max(math.ceil(per_ms * 1000 / limit), 1)
local next_tat = math.max(tat, now_us) + interval
local allowance = burst * interval
local gcra_ok = (not smoothing) or (next_tat - now_us <= allowance)
if window_ok and gcra_ok then
  local slot = current % 11
  counts[slot] = counts[slot] + 1
  if smoothing then tat = next_tat end
  local fields = { 'n', current, 't', tat }
  for i = 0, 10 do
    fields[#fields + 1] = tostring(i)
    fields[#fields + 1] = counts[i]
  end
  redis.call('HSET', key, unpack(fields))
  redis.call('PEXPIRE', key, per_ms + 2 * slot_ms)
  local remaining = limit - counted - 1
  if smoothing then
    remaining = math.min(remaining, math.floor((allowance - (next_tat - now_us)) / interval))
  end
  local first = 10
  for k = 0, 10 do
    if counts[(oldest + k) % 11] > 0 then first = k break end
  end
  return { 1, remaining, math.max((current + 1 + first) * slot_ms - now_ms, 0) }
end
local wait = 0
if not window_ok then
  local excess = counted + 1 - limit
  local freed = 0
  for k = 0, 10 do
    freed = freed + counts[(oldest + k) % 11]
    if freed >= excess then
      wait = math.max((current + 1 + k) * slot_ms - now_ms, 0)
      break
    end
  end
end
if not gcra_ok then
  wait = math.max(wait, math.ceil((next_tat - now_us - allowance) / 1000))
end
return { 0, 0, math.max(wait, 1) }

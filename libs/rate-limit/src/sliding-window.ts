/**
 * One rate-limit decision, atomically, on Redis's clock (a Lua script runs alone on the server:
 * no read-then-write race between instances, and no instance's clock in the count).
 *
 * The window is split into BUCKETS slots (1 s each for 60 s), one hash field per slot holding
 * its count, so a client's memory is at most BUCKETS + 1 small fields however many requests it
 * makes. A decision counts the current slot and the BUCKETS before it: requests up to one slot
 * older than the window still count, so no rolling window ever admits more than the limit (at
 * the price of a slot's delay before a request is forgotten). A slot is the window over BUCKETS
 * rounded up, so BUCKETS slots always cover the window (rounded down, a 2 s window's 33 ms slots
 * covered only 1 980 ms). A refused request is not counted.
 *
 * KEYS[1] the client's hash. ARGV: limit, window (ms), deadline (ms, Redis time; 0: none).
 * A call that reaches Redis after its deadline (the caller gave up waiting and decided without
 * Redis) changes nothing, so a request is never counted twice.
 *
 * Returns { admitted (1, 0, or -1 past the deadline), count in the window, ms until a slot frees
 * (for a refusal: until the count drops under the limit), Redis's clock (ms) }.
 */
export const BUCKETS = 60;

export const SLIDING_WINDOW_LUA = `
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local deadline = tonumber(ARGV[3])
if deadline > 0 and now > deadline then
  return {-1, 0, 0, now}
end
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local buckets = ${BUCKETS}
local size = math.ceil(window / buckets)
local current = math.floor(now / size)
local oldest = current - buckets

local fields = redis.call('HGETALL', KEYS[1])
local count = 0
local first = nil
local stale = nil
for i = 1, #fields, 2 do
  local slot = tonumber(fields[i])
  if slot < oldest then
    stale = stale or {}
    stale[#stale + 1] = fields[i]
  else
    count = count + tonumber(fields[i + 1])
    if first == nil or slot < first then first = slot end
  end
end
if stale then
  redis.call('HDEL', KEYS[1], unpack(stale))
end

local admitted = 0
if count < limit then
  redis.call('HINCRBY', KEYS[1], current, 1)
  count = count + 1
  admitted = 1
  first = first or current
end
redis.call('PEXPIRE', KEYS[1], window + size)

-- A slot stops counting when the current slot is more than BUCKETS past it. Admitted: the oldest
-- slot frees first. Refused (the rare path, so the only one that sorts): the wait until enough
-- slots have freed to bring the count under the limit.
local wait = 0
if admitted == 1 then
  wait = (first + buckets + 1) * size - now
else
  local live = {}
  for i = 1, #fields, 2 do
    local slot = tonumber(fields[i])
    if slot >= oldest then live[#live + 1] = { slot, tonumber(fields[i + 1]) } end
  end
  table.sort(live, function(a, b) return a[1] < b[1] end)
  local excess = count - limit + 1
  for _, entry in ipairs(live) do
    excess = excess - entry[2]
    if excess <= 0 then
      wait = (entry[1] + buckets + 1) * size - now
      break
    end
  end
end
return { admitted, count, wait, now }
`;

/**
 * One rate-limit decision, or a lease of several, atomically, on Redis's clock (a Lua script runs
 * alone on the server: no read-then-write race between instances, and no instance's clock in the
 * count).
 *
 * The window is split into BUCKETS slots (1 s each for 60 s), one hash field per slot holding
 * its count, so a client's memory is at most BUCKETS + 1 small fields however many requests it
 * makes. A decision counts the current slot and the BUCKETS before it: requests up to one slot
 * older than the window still count, so no rolling window ever admits more than the limit (at
 * the price of a slot's delay before a request is forgotten). A slot is the window over BUCKETS
 * rounded up, so BUCKETS slots always cover the window (rounded down, a 2 s window's 33 ms slots
 * covered only 1 980 ms). A refused request is not counted.
 *
 * Leases: a call may ask for `want` admissions at once. It is granted at most what is left under
 * the limit split between the instances that took some in this slot or the one before (each
 * leaves a marker field `m<slot>:<instance>` worth 0, so a sum of the fields is still the
 * count), and at least one; all are counted in the current slot at once. The caller may spend
 * them only until the current slot ends: a request admitted later than its slot would leave the
 * window one slot early. What it did not spend it gives back with its next call (`returnSlot`,
 * `returnCount`), taken off that slot while the slot still counts.
 *
 * KEYS[1] the client's hash. ARGV: limit, window (ms), deadline (ms, Redis time; 0: none), want,
 * instance, returnSlot, returnCount. A call that reaches Redis after its deadline (the caller
 * gave up waiting and decided without Redis) changes nothing, so a request is never counted
 * twice.
 *
 * Returns { admitted (1, 0, or -1 past the deadline), count in the window (with the lease), ms
 * until a slot frees (for a refusal: until the count drops under the limit), Redis's clock (ms),
 * granted, the current slot, ms until it ends }.
 */
export const BUCKETS = 60;

export const SLIDING_WINDOW_LUA = `
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local deadline = tonumber(ARGV[3])
if deadline > 0 and now > deadline then
  return {-1, 0, 0, now, 0, 0, 0}
end
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local want = tonumber(ARGV[4])
local instance = ARGV[5]
local buckets = ${BUCKETS}
local size = math.ceil(window / buckets)
local current = math.floor(now / size)
local oldest = current - buckets

local returnSlot = tonumber(ARGV[6])
local returnCount = tonumber(ARGV[7])
if returnCount > 0 and returnSlot >= oldest then
  local held = tonumber(redis.call('HGET', KEYS[1], returnSlot) or '0')
  local back = math.min(held, returnCount)
  if back == held then
    redis.call('HDEL', KEYS[1], returnSlot)
  elseif back > 0 then
    redis.call('HINCRBY', KEYS[1], returnSlot, -back)
  end
end

local fields = redis.call('HGETALL', KEYS[1])
local count = 0
local first = nil
local stale = nil
local others = 0
local marked = false
for i = 1, #fields, 2 do
  local slot = tonumber(fields[i])
  if slot == nil then
    local markSlot, id = string.match(fields[i], '^m(%d+):(.+)$')
    markSlot = tonumber(markSlot)
    if markSlot == nil or markSlot < current - 1 or (id == instance and markSlot < current) then
      stale = stale or {}
      stale[#stale + 1] = fields[i]
    elseif id == instance then
      marked = true
    else
      others = others + 1
    end
  elseif slot < oldest then
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
local granted = 0
if count < limit then
  granted = math.max(1, math.min(want, math.floor((limit - count) / (others + 1))))
  redis.call('HINCRBY', KEYS[1], current, granted)
  count = count + granted
  admitted = 1
  first = first or current
  if not marked then redis.call('HSET', KEYS[1], 'm' .. current .. ':' .. instance, 0) end
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
    if slot ~= nil and slot >= oldest then live[#live + 1] = { slot, tonumber(fields[i + 1]) } end
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
return { admitted, count, wait, now, granted, current, (current + 1) * size - now }
`;

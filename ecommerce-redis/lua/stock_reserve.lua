-- Takes every line of an order, all or nothing, with the conditional decrement semantics.
-- KEYS: 1 on_hand, 2 reserved, 3 reservations (hash by order), 4 expiries (sorted set),
--       5.. the ledger list of each line's SKU, in line order.
-- ARGV: 1 order, 2 new reservation id, 3 time to live in ms, then sku, units per line
--       (lines summed per SKU and sorted by the caller).
-- Returns {'existing', json} for a held, committed or returned reservation (nothing moves),
-- {'short', json list of {sku, requested, available}}, or {'taken', json}.
local order, ttl = ARGV[1], tonumber(ARGV[3])
local id = ARGV[2]
local existing = redis.call('HGET', KEYS[3], order)
if existing then
  local r = cjson.decode(existing)
  if r.state ~= 'released' then return {'existing', existing} end
  id = r.id
end
local lines, short = {}, {}
for i = 4, #ARGV, 2 do
  local sku, n = ARGV[i], tonumber(ARGV[i + 1])
  local available = tonumber(redis.call('HGET', KEYS[1], sku) or '0')
  if available < n then
    short[#short + 1] = {sku = sku, requested = n, available = available}
  end
  lines[#lines + 1] = {sku = sku, quantity = n}
end
if #short > 0 then return {'short', cjson.encode(short)} end
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
for i, line in ipairs(lines) do
  redis.call('HINCRBY', KEYS[1], line.sku, -line.quantity)
  redis.call('HINCRBY', KEYS[2], line.sku, line.quantity)
  redis.call('RPUSH', KEYS[4 + i], cjson.encode({kind = 'reserved', quantity = line.quantity, order = order, at = now}))
end
local reservation = cjson.encode({id = id, lines = lines, state = 'held', expires_at = now + ttl})
redis.call('HSET', KEYS[3], order, reservation)
redis.call('ZADD', KEYS[4], now + ttl, order)
return {'taken', reservation}

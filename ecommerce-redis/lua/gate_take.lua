-- The flash-sale gate: takes units for an order from the gate's counters, all or nothing,
-- once per order.
-- KEYS: 1 available units (hash by SKU), 2 orders let through (hash order -> lines JSON).
-- ARGV: 1 order, 2 lines JSON, then sku, units per line.
-- Returns {'through'} (taken now or before), {'miss'} when a SKU has no counter (let the
-- database decide), or {'short', json list of {sku, requested, available}}.
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return {'through'} end
local short = {}
for i = 3, #ARGV, 2 do
  local counter = redis.call('HGET', KEYS[1], ARGV[i])
  if not counter then return {'miss'} end
  local available, n = tonumber(counter), tonumber(ARGV[i + 1])
  if available < n then
    short[#short + 1] = {sku = ARGV[i], requested = n, available = math.max(available, 0)}
  end
end
if #short > 0 then return {'short', cjson.encode(short)} end
for i = 3, #ARGV, 2 do
  redis.call('HINCRBY', KEYS[1], ARGV[i], -tonumber(ARGV[i + 1]))
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return {'through'}

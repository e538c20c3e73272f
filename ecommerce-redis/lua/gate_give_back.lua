-- Gives an order's units back to the gate's counters, once.
-- KEYS: 1 available units, 2 orders let through.
-- ARGV: 1 order.
-- Returns 1 when given back now, 0 when the order was not (or no longer) through the gate.
local lines = redis.call('HGET', KEYS[2], ARGV[1])
if not lines then return 0 end
for _, line in ipairs(cjson.decode(lines)) do
  if redis.call('HEXISTS', KEYS[1], line.sku) == 1 then
    redis.call('HINCRBY', KEYS[1], line.sku, line.quantity)
  end
end
redis.call('HDEL', KEYS[2], ARGV[1])
return 1

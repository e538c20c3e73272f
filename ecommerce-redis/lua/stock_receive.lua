-- Receives units of a SKU.
-- KEYS: 1 on_hand, 2 reserved, 3 sold (hashes by SKU), 4 the SKU's ledger list.
-- ARGV: 1 sku, 2 units, 3 largest total allowed.
-- Returns {on_hand, reserved, sold}, or an error when the total would overflow.
local sku, n = ARGV[1], tonumber(ARGV[2])
local on_hand = tonumber(redis.call('HGET', KEYS[1], sku) or '0')
local reserved = tonumber(redis.call('HGET', KEYS[2], sku) or '0')
local sold = tonumber(redis.call('HGET', KEYS[3], sku) or '0')
if on_hand + reserved + sold + n > tonumber(ARGV[3]) then
  return redis.error_reply('stock total overflow')
end
local t = redis.call('TIME')
on_hand = redis.call('HINCRBY', KEYS[1], sku, n)
redis.call('HSETNX', KEYS[2], sku, 0)
redis.call('HSETNX', KEYS[3], sku, 0)
redis.call('RPUSH', KEYS[4], cjson.encode({kind = 'received', quantity = n, at = t[1] * 1000 + math.floor(t[2] / 1000)}))
return {on_hand, reserved, sold}

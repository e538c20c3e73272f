-- Counts received units on the gate: adds them to the SKU's counter, or, for a SKU the gate
-- has no counter for yet, starts the counter at the inventory's units on hand.
-- KEYS: 1 available units. ARGV: 1 sku, 2 units received, 3 units on hand after the receipt.
-- Returns the counter.
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  return redis.call('HINCRBY', KEYS[1], ARGV[1], tonumber(ARGV[2]))
end
redis.call('HSET', KEYS[1], ARGV[1], tonumber(ARGV[3]))
return tonumber(ARGV[3])

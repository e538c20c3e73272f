-- Counts the co-purchases of an order once.
-- KEYS: 1 the set of counted orders, 2.. the sorted set of each distinct SKU.
-- ARGV: 1 order, 2.. the SKU of each KEYS[i + 1].
-- Returns 1 when counted now, 0 when it had been.
if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then return 0 end
for i = 2, #KEYS do
  for j = 2, #KEYS do
    if i ~= j then redis.call('ZINCRBY', KEYS[i], 1, ARGV[j]) end
  end
end
return 1

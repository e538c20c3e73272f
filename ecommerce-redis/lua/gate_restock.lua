-- Puts a cancelled order's units back on the gate's counters, once.
-- KEYS: 1 available units, 2 the set of orders already restocked.
-- ARGV: 1 order, then sku, units per line.
-- Returns 1 when restocked now, 0 when it had been.
if redis.call('SADD', KEYS[2], ARGV[1]) == 0 then return 0 end
for i = 2, #ARGV, 2 do
  if redis.call('HEXISTS', KEYS[1], ARGV[i]) == 1 then
    redis.call('HINCRBY', KEYS[1], ARGV[i], tonumber(ARGV[i + 1]))
  end
end
return 1

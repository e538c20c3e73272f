-- Compare-and-set write of a whole cart.
-- KEYS[1]: the cart's hash. ARGV[1]: the version the caller read (0: must not exist),
-- ARGV[2]: the cart as JSON (already at version + 1), ARGV[3]: time to live in milliseconds.
-- Returns 1 when written, 0 when the stored version differs.
local stored = redis.call('HGET', KEYS[1], 'v')
local current = 0
if stored then current = tonumber(stored) end
if current ~= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'v', current + 1, 'doc', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1

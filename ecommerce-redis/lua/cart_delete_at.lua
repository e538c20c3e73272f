-- Deletes a cart if it is at the given version (absent counts as version 0).
-- KEYS[1]: the cart's hash. ARGV[1]: the expected version.
-- Returns 1 when the cart is gone, 0 when it is at another version.
local stored = redis.call('HGET', KEYS[1], 'v')
local current = 0
if stored then current = tonumber(stored) end
if current ~= tonumber(ARGV[1]) then return 0 end
redis.call('DEL', KEYS[1])
return 1

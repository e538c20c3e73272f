-- Commits, releases or returns the stock of an order's reservation, once.
-- KEYS: 1 on_hand, 2 reserved, 3 sold, 4 reservations, 5 expiries, 6.. the ledger list of
--       each line's SKU, in the reservation's line order (read by the caller).
-- ARGV: 1 order, 2 operation: commit | release | release_if_expired | return,
--       3 the number of lines the caller read.
-- Returns {'none'}, {'kept', json}, {'refused', state}, {'moved', json}, or {'stale'} when the
-- reservation's lines are not the ones the caller read (read again and retry).
local order, op = ARGV[1], ARGV[2]
local stored = redis.call('HGET', KEYS[4], order)
if not stored then return {'none'} end
local r = cjson.decode(stored)
if #r.lines ~= tonumber(ARGV[3]) then return {'stale'} end
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local from, to, kind, next_state
if op == 'commit' then
  if r.state == 'held' then from, to, kind, next_state = KEYS[2], KEYS[3], 'committed', 'committed'
  elseif r.state == 'released' then return {'refused', r.state}
  else return {'kept', stored} end
elseif op == 'release' or op == 'release_if_expired' then
  if r.state == 'held' then
    if op == 'release_if_expired' and r.expires_at > now then return {'kept', stored} end
    from, to, kind, next_state = KEYS[2], KEYS[1], 'released', 'released'
  elseif r.state == 'released' or op == 'release_if_expired' then return {'kept', stored}
  else return {'refused', r.state} end
elseif op == 'return' then
  if r.state == 'committed' then from, to, kind, next_state = KEYS[3], KEYS[1], 'returned', 'returned'
  elseif r.state == 'returned' then return {'kept', stored}
  else return {'refused', r.state} end
else
  return redis.error_reply('unknown operation ' .. op)
end
for i, line in ipairs(r.lines) do
  redis.call('HINCRBY', from, line.sku, -line.quantity)
  redis.call('HINCRBY', to, line.sku, line.quantity)
  redis.call('RPUSH', KEYS[5 + i], cjson.encode({kind = kind, quantity = line.quantity, order = order, at = now}))
end
r.state = next_state
local updated = cjson.encode(r)
redis.call('HSET', KEYS[4], order, updated)
redis.call('ZREM', KEYS[5], order)
return {'moved', updated}

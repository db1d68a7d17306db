"""The Lua scripts a cluster node runs on Redis: each is one atomic step on the server.

Keys are built inside the scripts from the deployment's prefix (ARGV[1]); this suits one
Redis server (or a replicated pair), not Redis Cluster, whose slots would need every key
declared up front.
"""

from __future__ import annotations

from typing import Final

# ARGV: prefix, node id, lease ttl (ms), shard count, first shard to try when claiming.
# Heartbeat, renew this node's leases, claim free shards up to a fair share.
# Returns {owned shards, live node ids (heartbeat within the ttl), dead node ids, 1 if this
# node's heartbeat was not there (its first round; or it was swept as dead, or Redis lost it)}.
LEASES: Final = """
local p, me, ttl, shards, first = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local unknown = redis.call('ZADD', p .. 'nodes', now, me)
local live = redis.call('ZRANGEBYSCORE', p .. 'nodes', now - ttl, '+inf')
local dead = redis.call('ZRANGEBYSCORE', p .. 'nodes', '-inf', '(' .. (now - ttl))
local want = math.ceil(shards / #live)
local owned = {}
for s = 0, shards - 1 do
  local k = p .. 'lease:' .. s
  if redis.call('GET', k) == me then
    redis.call('PEXPIRE', k, ttl)
    owned[#owned + 1] = s
  end
end
for i = 0, shards - 1 do
  if #owned >= want then break end
  local s = (first + i) % shards
  if redis.call('SET', p .. 'lease:' .. s, me, 'NX', 'PX', ttl) then owned[#owned + 1] = s end
end
return {owned, live, dead, unknown}
"""

# ARGV: prefix, node id, shards to give up... Deletes each lease this node still holds.
RELEASE: Final = """
local p, me = ARGV[1], ARGV[2]
local n = 0
for i = 3, #ARGV do
  local k = p .. 'lease:' .. ARGV[i]
  if redis.call('GET', k) == me then redis.call('DEL', k); n = n + 1 end
end
return n
"""

# ARGV: prefix, dead node id. Forget a node that stopped heart-beating: its heartbeat, its
# stream, and where its links were (returned, so that their cars learn they are offline).
SWEEP: Final = """
local p, dead = ARGV[1], ARGV[2]
local gone = {}
local where = redis.call('HGETALL', p .. 'where')
for i = 1, #where, 2 do
  if where[i + 1] == dead then
    redis.call('HDEL', p .. 'where', where[i])
    gone[#gone + 1] = where[i]
  end
end
redis.call('ZREM', p .. 'nodes', dead)
redis.call('DEL', p .. 'node:' .. dead)
return gone
"""

# One transaction of a node: its dirty states, the messages its actors sent, the stream
# entries they handled, its links' locations and its pushes, all or nothing, and each write
# fenced by the lease of the shard it belongs to (a node that lost a shard writes nothing of
# it). ARGV: prefix, node id, lease ttl (ms), saved_at, then ops, each a tag and its fields:
#   S shard address kind data       save a state
#   A shard stream entry            acknowledge (and delete) a handled entry
#   X shard stream payload          append an envelope to a stream
#   W shard address payload         append it to the stream of the node where `address` is
#   H address                       `address` (a link) is on this node now
#   D address                       ... is not any more (if it still was)
#   P shard account keep frame      queue a durable push; copy it to the account's other nodes
#   E account frame                 copy a live-only push to the account's other nodes
#   R account                       this node has no session of `account` any more
# shard -1: not fenced. Returns {lost shards, W ops (by number) that found nobody, push seqs}.
COMMIT: Final = """
local p, me, ttl, saved = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local owns, lost, nobody, seqs = {}, {}, {}, {}
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function ours(shard)
  if shard == '-1' then return true end
  local held = owns[shard]
  if held == nil then
    held = redis.call('GET', p .. 'lease:' .. shard) == me
    owns[shard] = held
    if not held then lost[#lost + 1] = tonumber(shard) end
  end
  return held
end
local function copy(account, seq, frame)
  local set = p .. 'sessions:' .. account
  for _, node in ipairs(redis.call('SMEMBERS', set)) do
    if node ~= me then
      local beat = redis.call('ZSCORE', p .. 'nodes', node)
      if beat and tonumber(beat) >= now - ttl then
        redis.call('XADD', p .. 'node:' .. node, 'MAXLEN', '~', 100000, '*', 'p', account, 's', seq, 'f', frame)
      else
        redis.call('SREM', set, node)
      end
    end
  end
end
local i, op = 5, 0
while i <= #ARGV do
  local tag = ARGV[i]
  op = op + 1
  if tag == 'S' then
    if ours(ARGV[i + 1]) then
      redis.call('HSET', p .. 'state:' .. ARGV[i + 2], 'kind', ARGV[i + 3], 'data', ARGV[i + 4], 'saved_at', saved)
      redis.call('ZADD', p .. 'states', 0, ARGV[i + 2])
    end
    i = i + 5
  elseif tag == 'A' then
    if ours(ARGV[i + 1]) then
      redis.call('XACK', ARGV[i + 2], 'twin', ARGV[i + 3])
      redis.call('XDEL', ARGV[i + 2], ARGV[i + 3])
    end
    i = i + 4
  elseif tag == 'X' then
    if ours(ARGV[i + 1]) then redis.call('XADD', ARGV[i + 2], 'MAXLEN', '~', 100000, '*', 'e', ARGV[i + 3]) end
    i = i + 4
  elseif tag == 'W' then
    if ours(ARGV[i + 1]) then
      local node = redis.call('HGET', p .. 'where', ARGV[i + 2])
      if node then
        redis.call('XADD', p .. 'node:' .. node, 'MAXLEN', '~', 100000, '*', 'e', ARGV[i + 3])
      else
        nobody[#nobody + 1] = op
      end
    end
    i = i + 4
  elseif tag == 'H' then
    redis.call('HSET', p .. 'where', ARGV[i + 1], me)
    i = i + 2
  elseif tag == 'D' then
    if redis.call('HGET', p .. 'where', ARGV[i + 1]) == me then redis.call('HDEL', p .. 'where', ARGV[i + 1]) end
    i = i + 2
  elseif tag == 'P' then
    if ours(ARGV[i + 1]) then
      local account, keep, frame = ARGV[i + 2], tonumber(ARGV[i + 3]), ARGV[i + 4]
      local seq = redis.call('INCR', p .. 'pushseq:' .. account)
      local queue = p .. 'push:' .. account
      redis.call('XADD', queue, seq .. '-0', 'f', frame)
      if keep > 0 and seq - keep >= 1 then redis.call('XTRIM', queue, 'MINID', (seq - keep + 1) .. '-0') end
      copy(account, seq, frame)
      seqs[#seqs + 1] = seq
    else
      seqs[#seqs + 1] = 0
    end
    i = i + 5
  elseif tag == 'E' then
    copy(ARGV[i + 1], 0, ARGV[i + 2])
    i = i + 3
  elseif tag == 'R' then
    redis.call('SREM', p .. 'sessions:' .. ARGV[i + 1], me)
    i = i + 2
  else
    return redis.error_reply('unknown commit op ' .. tostring(tag))
  end
end
return {lost, nobody, seqs}
"""

//! The Lua scripts of the Redis store. Each touches keys of one hash slot only.

/// The end of both click scripts: each day's new visitors of the group, `visitors[k]` for the
/// day at `ARGV[p + k - 1]`, into the day's set up to `limit` (and the rollups' `u|<day>`), past
/// it into the day's HyperLogLog. Each script then gives its answer.
///
/// A call from Lua costs about as much as the work of most commands, so each day's visitors
/// take one `SADD` while the set has room for all of them, and one `SMISMEMBER` (which of them
/// the set holds: those are not new) and one `PFADD` once it is full; only the group that fills
/// the set goes visitor by visitor. Lists go out 500 at a time (Lua's `unpack` has a limit).
macro_rules! visitors {
    () => {
        r"
for k, l in pairs(visitors) do
  local set, hll = KEYS[3 + 2 * k], KEYS[4 + 2 * k]
  local n = redis.call('SCARD', set)
  local added = 0
  local rest = {}
  if n + #l <= limit then
    for i = 1, #l, 500 do
      added = added + redis.call('SADD', set, unpack(l, i, math.min(i + 499, #l)))
    end
  elseif n >= limit then
    for i = 1, #l, 500 do
      local known = redis.call('SMISMEMBER', set, unpack(l, i, math.min(i + 499, #l)))
      for j, member in ipairs(known) do
        if member == 0 then rest[#rest + 1] = l[i + j - 1] end
      end
    end
  else
    for _, v in ipairs(l) do
      if redis.call('SISMEMBER', set, v) == 0 then
        if n < limit then
          redis.call('SADD', set, v)
          n = n + 1
          added = added + 1
        else
          rest[#rest + 1] = v
        end
      end
    end
  end
  if added > 0 then redis.call('HINCRBY', rollups, 'u|' .. ARGV[p + k - 1], added) end
  for i = 1, #rest, 500 do
    redis.call('PFADD', hll, unpack(rest, i, math.min(i + 499, #rest)))
  end
end
"
    };
}

/// The link scripts' record of which links changed, for readers that keep a copy of them (the
/// link book, `crate::link_book`): each call that creates or changes links takes the next
/// number of `changes:seq` and scores its codes with it in the `changes` zset (a code changed
/// again moves up), which keeps the `kept` latest; `changes:floor` is the highest number it let
/// go, so a reader that holds every change up to a number at least that high finds all later
/// ones in the zset.
macro_rules! link_changes {
    () => {
        r"
local function note_changes(changes, seq, floor, kept, codes)
  local n = redis.call('INCR', seq)
  for _, code in ipairs(codes) do redis.call('ZADD', changes, n, code) end
  local over = redis.call('ZCARD', changes) - kept
  if over > 0 then
    local gone = redis.call('ZPOPMIN', changes, over)
    redis.call('SET', floor, gone[#gone])
  end
end
"
    };
}

/// The start of both click scripts: re-keying, and the writers' marks that tell a new click
/// from a retried one without reading through the stream.
///
/// Each kolink writer proposes strictly increasing ids, with a tag of its own (2^32 and up) in
/// their sequence part, and writes its clicks to a link in that order (retries and spool replays
/// included). A click whose XADD fails (its id is not above the stream's last one) is either
/// there already under its own id (a retry), or was re-keyed before (a retry), or is new and
/// behind another writer's later entry. The link's `writers` hash keeps, per writer tag, the
/// proposed id of its last click that was re-keyed (its mark): a click above its writer's mark
/// was never re-keyed, so it is new unless its own id is there; one at or below the mark, or
/// of a writer without a mark here, is looked for among the entries after it (`find`), once
/// per writer and link until a re-key leaves a mark. Marks are written only when a click is
/// re-keyed, so the usual write pays nothing for them; marks past the click retention are
/// dropped when a new writer's arrives (their clicks are trimmed away).
///
/// `rekey` adds a new click under an id Redis chooses, remembering the proposed one in `rid`
/// (which retries look for) and in `cid`, the click's id: this version hands out the proposed
/// id whether the click was re-keyed at once or on a replay of the spool. (Earlier versions
/// handed out the Redis id of a click re-keyed at once, and wrote no `cid`: such entries are
/// known by their entry id, as they were.)
/// Never Redis' plain `*` right after a proposed id: within the same millisecond that is
/// `<ms>-<seq+1>`, the id the same writer proposes next, which would then pass for a retry of
/// this click. After a proposed id the re-keyed click takes the next millisecond's first id
/// instead; after one of Redis' own (sequence below 2^32), `*` is safe.
macro_rules! writers {
    () => {
        r"
local function split(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), seq
end
-- Whether stream id a is after b (sequence parts compared as decimal strings: exact past 2^53).
local function after(a, b)
  local ma, sa = split(a)
  local mb, sb = split(b)
  if ma ~= mb then return ma > mb end
  if #sa ~= #sb then return #sa > #sb end
  return sa > sb
end
local marks, marked = {}, {}
-- Whether the click may have been re-keyed before: at or below its writer's mark, or its
-- writer has no mark here (it never re-keyed a click here, or it did before marks were kept,
-- or its mark was dropped with the clicks past their retention).
local function maybe_rekeyed(writers, tag, id)
  local m = marks[tag]
  if m == nil then
    m = redis.call('HGET', writers, tag) or false
    marks[tag] = m
  end
  return not m or not after(id, m)
end
local function mark(tag, id)
  local m = marks[tag]
  if not m or after(id, m) then
    marks[tag] = id
    marked[tag] = true
  end
end
-- Writes the marks moved; when a new writer's mark arrives, drops marks older than `minid`
-- (their clicks are past retention, trimmed away).
local function save_marks(writers, minid)
  local fresh = false
  for tag in pairs(marked) do
    if redis.call('HSET', writers, tag, marks[tag]) == 1 then fresh = true end
  end
  if fresh and redis.call('HLEN', writers) > 16 then
    local all = redis.call('HGETALL', writers)
    local cutoff = tonumber(minid)
    for k = 1, #all, 2 do
      if (split(all[k + 1])) < cutoff then redis.call('HDEL', writers, all[k]) end
    end
  end
end
-- Whether a click's own entry is there.
local function there(stream, id)
  return #redis.call('XRANGE', stream, id, id) > 0
end
-- The re-keyed copy of a click written before, if any.
-- Read 100 entries at a time: the re-keyed entry is usually among the first, and a busy
-- link's whole tail in one reply would hold up Redis and its memory.
local function find(stream, id)
  local from = id
  while true do
    local page = redis.call('XRANGE', stream, from, '+', 'COUNT', 100)
    for _, e in ipairs(page) do
      local f = e[2]
      for k = 1, #f, 2 do
        if f[k] == 'rid' and f[k+1] == id then return e[1] end
      end
    end
    if #page < 100 then return nil end
    from = '(' .. page[#page][1]
  end
end
-- `last`: the stream's last generated id, when the caller knows it (its own last XADD); else
-- read from XINFO (not the last entry's: an entry deleted by a rolled-back call still counts).
-- The new id is kept in `writers` under `r|<proposed id>`, so that the id the click's redirect
-- handed out finds it (`get_click`); dropped with the marks past the retention.
local function rekey(writers, stream, minid, tag, id, line, last)
  mark(tag, id)
  if not last then
    local info = redis.call('XINFO', 'STREAM', stream)
    for k = 1, #info, 2 do
      if info[k] == 'last-generated-id' then last = info[k + 1] end
    end
  end
  local next = '*'
  if last then
    local ms, seq = split(last)
    if tonumber(seq) >= 4294967296 then next = string.format('%d-*', ms + 1) end
  end
  local new = redis.call('XADD', stream, 'MINID', '~', minid, next, 'rid', id, 'cid', id, 'i', line)
  redis.call('HSET', writers, 'r|' .. id, new)
  return new
end
"
    };
}

pub(super) const CREATE_RECORD: &str = r"
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 0 end
local n = redis.call('INCR', KEYS[3])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], n, ARGV[1])
return 1
";

// KEYS: links, link_ids, coupons, links:idx, summaries, links:version, the three keys of
// `link_changes!`, then per link: campaign zset, kol zset. ARGV per link: code, id, COUPON (or
// ''), json, summary json; last, the changes kept and the links' new version (a random number:
// a version never comes back, even after a write was lost).
pub(super) const CREATE_LINKS: &str = concat!(
    link_changes!(),
    r"
local n = (#ARGV - 2) / 5
for i = 0, n - 1 do
  local code, coupon = ARGV[i*5+1], ARGV[i*5+3]
  if redis.call('HEXISTS', KEYS[1], code) == 1 then return {'code', code} end
  if coupon ~= '' and redis.call('HEXISTS', KEYS[3], coupon) == 1 then return {'coupon', coupon} end
end
local codes = {}
for i = 0, n - 1 do
  local code, id, coupon, json = ARGV[i*5+1], ARGV[i*5+2], ARGV[i*5+3], ARGV[i*5+4]
  redis.call('HSET', KEYS[1], code, json)
  redis.call('HSET', KEYS[2], id, code)
  if coupon ~= '' then redis.call('HSET', KEYS[3], coupon, code) end
  redis.call('ZADD', KEYS[4], id, code)
  redis.call('HSET', KEYS[5], code, ARGV[i*5+5])
  redis.call('ZADD', KEYS[10 + i*2], id, code)
  redis.call('ZADD', KEYS[11 + i*2], id, code)
  codes[#codes + 1] = code
end
note_changes(KEYS[7], KEYS[8], KEYS[9], tonumber(ARGV[#ARGV - 1]), codes)
redis.call('SET', KEYS[6], ARGV[#ARGV])
return {'ok', ''}
"
);

// KEYS: hash. ARGV: id, expected json, new json. Compare-and-set.
pub(super) const REPLACE_RECORD: &str = r"
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
";

// KEYS: coupons. ARGV: old key, new key. Moves a coupon kept under an older key to its new
// one, unless the new one is taken; returns 1 moved, 0 not (gone, or taken: then the code of
// the link that holds it as the second item).
pub(super) const FOLD_COUPON: &str = r"
local code = redis.call('HGET', KEYS[1], ARGV[1])
if not code then return {0, ''} end
local holder = redis.call('HGET', KEYS[1], ARGV[2])
if holder then return {0, holder} end
redis.call('HSET', KEYS[1], ARGV[2], code)
redis.call('HDEL', KEYS[1], ARGV[1])
return {1, ''}
";

// KEYS: links, coupons, summaries, links:version, the three keys of `link_changes!`. ARGV:
// code, OLD COUPON, NEW COUPON, json, expected json, summary json, the links' new version (as
// `CREATE_LINKS`), the old coupon's key under the older rule (`CouponKey::legacy`; '' when it
// has none), and the changes kept.
// Compare-and-set: the coupon index moves only if the link is still the one read. A coupon
// changed leaves neither of its keys behind (the older one stays where today's was taken).
pub(super) const UPDATE_LINK: &str = concat!(
    link_changes!(),
    r"
local code, old, new = ARGV[1], ARGV[2], ARGV[3]
if redis.call('HGET', KEYS[1], code) ~= ARGV[5] then return {'stale', ''} end
if new ~= '' and new ~= old then
  local owner = redis.call('HGET', KEYS[2], new)
  if owner and owner ~= code then return {'coupon', new} end
end
for _, key in ipairs({old, ARGV[8]}) do
  if key ~= '' and key ~= new and redis.call('HGET', KEYS[2], key) == code then
    redis.call('HDEL', KEYS[2], key)
  end
end
if new ~= '' then redis.call('HSET', KEYS[2], new, code) end
redis.call('HSET', KEYS[1], code, ARGV[4])
redis.call('HSET', KEYS[3], code, ARGV[6])
note_changes(KEYS[5], KEYS[6], KEYS[7], tonumber(ARGV[9]), {code})
redis.call('SET', KEYS[4], ARGV[7])
return {'ok', ''}
"
);

// KEYS: stream, stats, rollups, writers, then per day the clicks name by index k (1, 2, ...):
// its visitor set at KEYS[3 + 2k] and its HyperLogLog at KEYS[4 + 2k].
// ARGV: minid, exact visitor limit, n, then per click: id, writer tag, day index (0: none),
// visitor, the entry's `i` field (`clicks::entry_line`), #fields, fields..., #rollups,
// rollups..., and last each day's YYYY-MM-DD by index.
// A day's first `limit` visitors go to its set (exact), and are counted in the rollups'
// `u|<day>`; later new visitors go to its HyperLogLog.
// Each click's entry is added first; the counters, rollups and visitors of the clicks that were
// new are then summed per field and written with one HINCRBY per distinct field and one PFADD
// per day, so a group of clicks costs about one XADD each.
pub(super) const CLICKS: &str = concat!(
    writers!(),
    r#"
local stream, stats, rollups, writers = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local minid, limit = ARGV[1], tonumber(ARGV[2])
local p = 4
local out = {}
local incr, order, rincr, rorder, visitors = {}, {}, {}, {}, {}
for i = 1, tonumber(ARGV[3]) do
  local id, tag, uv, visitor, line = ARGV[p], ARGV[p+1], tonumber(ARGV[p+2]), ARGV[p+3], ARGV[p+4]
  p = p + 5
  local nf = tonumber(ARGV[p])
  local first_field = p + 1
  p = p + 1 + nf
  local nr = tonumber(ARGV[p])
  local first_rollup = p + 1
  p = p + 1 + nr
  local res = redis.pcall('XADD', stream, 'MINID', '~', minid, id, 'i', line)
  local fresh = true
  if type(res) == 'table' and res.err then
    if there(stream, id) then
      res = id
    else
      res = maybe_rekeyed(writers, tag, id) and find(stream, id)
    end
    if res then
      fresh = false
    else
      res = rekey(writers, stream, minid, tag, id, line)
    end
  end
  if fresh then
    for j = first_field, first_field + nf - 1 do
      local f = ARGV[j]
      if incr[f] then incr[f] = incr[f] + 1 else incr[f] = 1; order[#order + 1] = f end
    end
    for j = first_rollup, first_rollup + nr - 1 do
      local f = ARGV[j]
      if rincr[f] then rincr[f] = rincr[f] + 1 else rincr[f] = 1; rorder[#rorder + 1] = f end
    end
    if uv > 0 and visitor ~= '' then
      local l = visitors[uv]
      if not l then l = {}; visitors[uv] = l end
      l[#l + 1] = visitor
    end
  end
  out[i] = res
end
for _, f in ipairs(order) do redis.call('HINCRBY', stats, f, incr[f]) end
for _, f in ipairs(rorder) do redis.call('HINCRBY', rollups, f, rincr[f]) end
save_marks(writers, minid)
"#,
    visitors!(),
    "return out\n"
);

// The usual way a group of one link's clicks is written: as `CLICKS`, with the counters and
// rollups summed over the group by kolink, so that Redis adds each field once and reads five
// arguments per click. KEYS as `CLICKS`. ARGV: minid, exact visitor limit, n, then per click:
// id, writer tag, day index (0: none), visitor, the entry's `i` field; then the number of
// counter fields and field, amount pairs; the same for the rollups; and last each day's
// YYYY-MM-DD by index.
// Summed counters hold only when every click of the group is new. A click whose XADD fails and
// whose own entry is there, or that is at or below its writer's mark, may have been written
// before (a retry, a replay): the entries this call added are deleted again, nothing is
// counted, and the answer is an empty list; kolink then writes the group with `CLICKS`, which
// decides click by click. Any other is new, behind another writer's later entry: it is
// re-keyed, as `CLICKS` does, and the group goes on. The answer is the entry ids when a click
// was re-keyed, else the number of clicks (each under its own id).
pub(super) const CLICKS_SUMMED: &str = concat!(
    writers!(),
    r#"
local stream, stats, rollups, writers = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local minid, limit = ARGV[1], tonumber(ARGV[2])
local p = 4
local out = {}
local visitors = {}
-- The stream's last id once this call has added to it; writer tags with a click known new.
local last, new, rekeyed = nil, {}, false
for i = 1, tonumber(ARGV[3]) do
  local id, tag, uv, visitor, line = ARGV[p], ARGV[p+1], ARGV[p+2], ARGV[p+3], ARGV[p+4]
  -- Behind what this call wrote, the click is re-keyed without trying its own id; once one
  -- click of a writer is known new here, its later ones are too (a writer's clicks are written
  -- in order, a group whole or not at all). The group's ids increase, so only a re-keyed
  -- click (under an id Redis chose) can leave a later one behind.
  local behind = rekeyed and not after(id, last)
  local res = behind or redis.pcall('XADD', stream, id, 'i', line)
  if behind or (type(res) == 'table' and res.err) then
    if not new[tag] and (there(stream, id) or maybe_rekeyed(writers, tag, id)) then
      if #out > 0 then redis.call('XDEL', stream, unpack(out)) end
      return {}
    end
    id = rekey(writers, stream, minid, tag, id, line, last)
    rekeyed = true
  end
  new[tag] = true
  last = id
  p = p + 5
  if uv ~= '0' and visitor ~= '' then
    uv = tonumber(uv)
    local l = visitors[uv]
    if not l then l = {}; visitors[uv] = l end
    l[#l + 1] = visitor
  end
  out[i] = id
end
-- Trimmed once for the group rather than by each XADD, and only once every click of it was
-- new: a retry must still find the entries it wrote before, however old.
redis.call('XTRIM', stream, 'MINID', '~', minid)
for _, hash in ipairs({stats, rollups}) do
  local n = tonumber(ARGV[p])
  for j = p + 1, p + 2 * n, 2 do redis.call('HINCRBY', hash, ARGV[j], ARGV[j+1]) end
  p = p + 1 + 2 * n
end
save_marks(writers, minid)
"#,
    visitors!(),
    // Every click under its own id (the usual case): their number, not the ids again.
    "if rekeyed then return out end\nreturn #out\n"
);

// KEYS: idem, log, recs. ARGV: key, json. Returns the stored JSON (its latest version).
pub(super) const SAVE_CONVERSION: &str = r"
local existing = redis.call('HGET', KEYS[1], ARGV[1])
if existing then
  local changed = redis.call('HGET', KEYS[3], existing)
  if changed then return changed end
  local e = redis.call('XRANGE', KEYS[2], existing, existing)
  if #e > 0 then return e[1][2][2] end
end
local id = redis.call('XADD', KEYS[2], '*', 'j', ARGV[2])
redis.call('HSET', KEYS[1], ARGV[1], id)
return ARGV[2]
";

// KEYS: orders, stats, refunded, rollups, hours_from. ARGV: conversion id, order key ('' unless
// a refund), refund amount, refund limit, n, then n field, amount pairs of the counters and the
// rollups' pairs after them. Returns 1 counted now, 0 counted before, 2 over the refund limit
// (not counted).
// An hourly counter of a day whose hours were pruned (`PRUNE_HOURS`) is not written again: its
// rollup holds the day. Hourly fields end in `<YYYY-MM-DD>|<hh>`.
pub(super) const COUNT_CONVERSION: &str = r"
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then return 0 end
if ARGV[2] ~= '' then
  local refunded = tonumber(redis.call('HGET', KEYS[3], ARGV[2]) or '0')
  if refunded + tonumber(ARGV[3]) > tonumber(ARGV[4]) then return 2 end
  redis.call('HINCRBY', KEYS[3], ARGV[2], ARGV[3])
end
redis.call('SADD', KEYS[1], ARGV[1])
local last = 6 + 2 * tonumber(ARGV[5])
local kept = redis.call('GET', KEYS[5])
for i = 6, #ARGV, 2 do
  if i >= last then
    redis.call('HINCRBY', KEYS[4], ARGV[i], ARGV[i+1])
  elseif not (kept and string.sub(ARGV[i], -13, -4) < kept) then
    redis.call('HINCRBY', KEYS[2], ARGV[i], ARGV[i+1])
  end
end
return 1
";

// KEYS: stats, rollups, hours_from. ARGV: the first day whose hours are kept (`YYYY-MM-DD`), the
// number n of days before it that follow (oldest first, the last the day before it), then the
// prefixes of hourly fields (`counters::hourly_prefixes`). Removes from the stats the 24 hourly
// fields (`<prefix><day>|<hh>`) of each prefix and day that the rollups name (`<prefix><day>`),
// for the days before the first kept one and not before the last run's (`hours_from`); returns
// how many went. When the last run was within the n days, only those days are looked up; else
// (a first run, or none for longer) every rollup is read. A link without stats gets no
// `hours_from`: it has nothing to prune.
pub(super) const PRUNE_HOURS: &str = r"
local keep, n = ARGV[1], tonumber(ARGV[2])
local done = redis.call('GET', KEYS[3])
if (done and done >= keep) or redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local prefixes, hours = {}, {}
for i = 3 + n, #ARGV do prefixes[#prefixes + 1] = ARGV[i] end
for h = 0, 23 do hours[h + 1] = string.format('|%02d', h) end
local removed, names = 0, {}
local function prune(rollup)
  for h = 1, 24 do names[#names + 1] = rollup .. hours[h] end
  if #names >= 480 then
    removed = removed + redis.call('HDEL', KEYS[1], unpack(names))
    names = {}
  end
end
if done and n > 0 and done >= ARGV[3] then
  for i = 3, 2 + n do
    local day = ARGV[i]
    if day >= done then
      local rollups = {}
      for j, p in ipairs(prefixes) do rollups[j] = p .. day end
      for j, v in ipairs(redis.call('HMGET', KEYS[2], unpack(rollups))) do
        if v then prune(rollups[j]) end
      end
    end
  end
else
  local known = {}
  for _, p in ipairs(prefixes) do known[p] = true end
  for _, f in ipairs(redis.call('HKEYS', KEYS[2])) do
    local day = string.sub(f, -10)
    if day < keep and not (done and day < done) and #f > 10 and known[string.sub(f, 1, -11)] then
      prune(f)
    end
  end
end
if #names > 0 then removed = removed + redis.call('HDEL', KEYS[1], unpack(names)) end
redis.call('SET', KEYS[3], keep)
return removed
";

// KEYS: stats, rollups. ARGV: the number of counters and their sum that the rollups were built
// from, then field, amount pairs. Replaces the rollups only if the counters are still those
// (every increment raises the sum); returns 1 if replaced, 0 if the counters moved meanwhile.
pub(super) const REPLACE_ROLLUPS: &str = r"
local values = redis.call('HVALS', KEYS[1])
local sum = 0
for _, v in ipairs(values) do sum = sum + tonumber(v) end
if #values ~= tonumber(ARGV[1]) or sum ~= tonumber(ARGV[2]) then return 0 end
redis.call('DEL', KEYS[2])
for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i+1]) end
return 1
";

// KEYS: metrics, rollups. ARGV: day, json. A day's insights, and their copy in the rollups
// (`m|<day>`), which reports over every day read instead of the metrics.
pub(super) const PUT_INSIGHTS: &str = r"
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[2], 'm|' .. ARGV[1], ARGV[2])
return 1
";

// KEYS: metrics, rollups. Copies every day of the metrics into the rollups (`PUT_INSIGHTS`),
// over an older copy; returns the days copied.
pub(super) const COPY_INSIGHTS: &str = r"
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do redis.call('HSET', KEYS[2], 'm|' .. all[i], all[i + 1]) end
return #all / 2
";

// KEYS: idem, recs. ARGV: key, json. A conversion's new version, kept beside its log entry.
pub(super) const UPDATE_CONVERSION: &str = r"
local id = redis.call('HGET', KEYS[1], ARGV[1])
if not id then return 0 end
redis.call('HSET', KEYS[2], id, ARGV[2])
return 1
";

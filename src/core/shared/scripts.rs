//! The Lua scripts the session runs, one round trip each. Times come from Redis (`TIME`, key
//! TTLs), never from an instance's clock, so clock skew between hosts cannot keep a circuit
//! open or closed. Redis 7 replicates scripts by effects, so `TIME` is allowed in them.

/// A local open: vote, and open the fleet once `quorum` instances voted within the window. A
/// lease this instance holds (its trial just failed) is given back.
///
/// KEYS: open, failing, forced, lease. ARGV: instance, quorum, window ms, open ms, channel,
/// name, cause. Returns `{votes, remainingMs}` (`remainingMs` is -1 when nothing was opened).
pub const VOTE: &str = r#"
if redis.call('GET', KEYS[4]) == ARGV[1] then redis.call('DEL', KEYS[4]) end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = math.ceil(tonumber(ARGV[3]))
redis.call('ZADD', KEYS[2], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. (now - window))
redis.call('PEXPIRE', KEYS[2], window)
local votes = redis.call('ZCARD', KEYS[2])
local forced = redis.call('GET', KEYS[3])
if votes < tonumber(ARGV[2]) or forced == 'forced_open' or forced == 'disabled' then
  return {votes, -1}
end
local ms = math.ceil(tonumber(ARGV[4]))
-- A longer open already in place (another instance's backoff) is kept, never shortened.
if redis.call('PTTL', KEYS[1]) < ms then
  redis.call('SET', KEYS[1], cjson.encode({instance = ARGV[1], cause = ARGV[7], ms = ms, votes = votes}), 'PX', ms)
end
local remaining = redis.call('PTTL', KEYS[1])
redis.call('PUBLISH', ARGV[5], cjson.encode({type = 'open', name = ARGV[6], instance = ARGV[1],
  remainingMs = remaining, votes = votes, cause = ARGV[7]}))
return {votes, remaining}
"#;

/// A trial succeeded: the fleet closes, the votes of the outage are forgotten, and the holder's
/// lease is released.
///
/// KEYS: open, failing, lease. ARGV: instance, channel, message.
pub const CLOSE: &str = r#"
redis.call('DEL', KEYS[1], KEYS[2])
if redis.call('GET', KEYS[3]) == ARGV[1] then redis.call('DEL', KEYS[3]) end
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1
"#;

/// An operator forced the breaker open or disabled it. With ARGV[5] = 1 (a resync re-publishing
/// a state Redis lost) an existing key, the reset tombstone included, is left alone.
///
/// KEYS: forced, lease. ARGV: state, instance, channel, message, only if missing (0 or 1).
pub const FORCED: &str = r#"
if ARGV[5] == '1' and redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
if redis.call('GET', KEYS[2]) == ARGV[2] then redis.call('DEL', KEYS[2]) end
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1
"#;

/// An operator reset the breaker: everything goes, and the forced key becomes the `none`
/// tombstone (so a resync can tell a reset from a key Redis lost).
///
/// KEYS: forced, open, failing, lease. ARGV: channel, message.
pub const RESET: &str = r#"
redis.call('SET', KEYS[1], 'none')
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])
redis.call('PUBLISH', ARGV[1], ARGV[2])
return 1
"#;

/// Asks for the trial lease. Returns -1 when this instance holds it (now or already, then with
/// its expiry renewed), else the holder's remaining ms.
///
/// KEYS: lease. ARGV: instance, lease ms.
pub const LEASE: &str = r#"
local ms = math.ceil(tonumber(ARGV[2]))
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ms) then return -1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ms)
  return -1
end
return redis.call('PTTL', KEYS[1])
"#;

/// Gives the lease back if this instance holds it.
///
/// KEYS: lease. ARGV: instance.
pub const RELEASE: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_read_time_from_redis_and_publish_where_they_must() {
        assert!(VOTE.contains("redis.call('TIME')"));
        for s in [VOTE, CLOSE, FORCED, RESET] {
            assert!(s.contains("'PUBLISH'"), "{s}");
        }
        for s in [LEASE, RELEASE] {
            assert!(!s.contains("PUBLISH"), "{s}");
        }
        // No script reads an instance's clock: every time is an argument in ms or from TIME.
        for s in [VOTE, CLOSE, FORCED, RESET, LEASE, RELEASE] {
            assert!(!s.contains("os.time"), "{s}");
        }
    }
}

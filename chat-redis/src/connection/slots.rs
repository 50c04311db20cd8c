//! Redis Cluster's key-to-slot mapping, for the checks and splits that
//! redis-rs does not expose: a pipeline is split by slot before the cluster
//! client sees it, every script call is checked to stay in one slot, and a
//! conversation's stream partition is derived from its slot.

use redis::{Arg, Cmd};

/// The number of hash slots of a Redis Cluster.
pub const SLOTS: u16 = 16384;

/// The slot of `key`: CRC16 (XMODEM) of its hash tag (the part between the
/// first `{` and the next `}`, when not empty) or of the whole key, mod 16384.
pub fn slot(key: &[u8]) -> u16 {
    crc16(hash_tag(key)) % SLOTS
}

/// True when every key of `keys` maps to one slot (or there are none).
pub fn same_slot<K: AsRef<[u8]>>(keys: &[K]) -> bool {
    let mut slots = keys.iter().map(|k| slot(k.as_ref()));
    match slots.next() {
        Some(first) => slots.all(|s| s == first),
        None => true,
    }
}

fn hash_tag(key: &[u8]) -> &[u8] {
    if let Some(open) = key.iter().position(|&b| b == b'{')
        && let Some(len) = key[open + 1..].iter().position(|&b| b == b'}')
        && len > 0
    {
        return &key[open + 1..open + 1 + len];
    }
    key
}

fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &byte in data {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// The key a command is routed by, for the commands this system sends; None
/// for commands without a key (PING, SCRIPT LOAD, INFO, WAIT...), which go
/// wherever the cluster client routes them on their own.
pub fn routing_key(cmd: &Cmd) -> Option<&[u8]> {
    let args: Vec<&[u8]> = cmd
        .args_iter()
        .filter_map(|a| match a {
            Arg::Simple(d) => Some(d),
            Arg::Cursor => None,
        })
        .collect();
    let name = args.first()?.to_ascii_uppercase();
    match name.as_slice() {
        b"EVAL" | b"EVALSHA" | b"EVAL_RO" | b"EVALSHA_RO" | b"FCALL" | b"FCALL_RO" => {
            let numkeys: usize = std::str::from_utf8(args.get(2)?).ok()?.parse().ok()?;
            if numkeys == 0 {
                None
            } else {
                args.get(3).copied()
            }
        }
        b"XREAD" | b"XREADGROUP" => {
            let streams = args
                .iter()
                .position(|a| a.eq_ignore_ascii_case(b"STREAMS"))?;
            args.get(streams + 1).copied()
        }
        b"XGROUP" | b"XINFO" | b"OBJECT" => args.get(2).copied(),
        b"PING" | b"ECHO" | b"SCRIPT" | b"INFO" | b"CLUSTER" | b"CLIENT" | b"CONFIG"
        | b"DBSIZE" | b"SCAN" | b"WAIT" | b"WAITAOF" | b"TIME" | b"FLUSHDB" | b"FLUSHALL"
        | b"HELLO" | b"SELECT" | b"COMMAND" | b"PUBLISH" | b"MULTI" | b"EXEC" | b"DISCARD"
        | b"MEMORY" | b"LATENCY" | b"SLOWLOG" | b"FUNCTION" | b"READONLY" | b"READWRITE" => None,
        _ => args.get(1).copied(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_redis() {
        // Values from CLUSTER KEYSLOT on Redis 7.
        assert_eq!(slot(b"foo"), 12182);
        assert_eq!(slot(b"bar"), 5061);
        assert_eq!(slot(b"123456789"), 12739);
        assert_eq!(slot(b"{user1000}.following"), slot(b"{user1000}.followers"));
        assert_eq!(
            slot(b"foo{}{bar}"),
            slot(b"foo{}{bar}"),
            "an empty tag hashes the key"
        );
        assert_ne!(slot(b"foo{}{bar}"), slot(b"bar"));
        assert_eq!(slot(b"foo{{bar}}zap"), slot(b"{bar"));
        assert_eq!(slot(b"foo{bar}{zap}"), slot(b"bar"));
    }

    #[test]
    fn commands_route_by_their_key() {
        let mut c = redis::cmd("EVALSHA");
        c.arg("abc").arg(2).arg("{c}:seq").arg("{c}:last").arg("x");
        assert_eq!(routing_key(&c), Some(&b"{c}:seq"[..]));
        let mut c = redis::cmd("XREADGROUP");
        c.arg("GROUP").arg("g").arg("c").arg("COUNT").arg(5);
        c.arg("STREAMS").arg("{ingress:3}").arg(">");
        assert_eq!(routing_key(&c), Some(&b"{ingress:3}"[..]));
        let mut c = redis::cmd("XGROUP");
        c.arg("CREATE").arg("s").arg("g").arg("0");
        assert_eq!(routing_key(&c), Some(&b"s"[..]));
        let mut c = redis::cmd("SCRIPT");
        c.arg("LOAD").arg("return 1");
        assert_eq!(routing_key(&c), None);
        assert_eq!(routing_key(&redis::cmd("PING")), None);
        let mut c = redis::cmd("RPUSH");
        c.arg("{user:a}:offline").arg("m");
        assert_eq!(routing_key(&c), Some(&b"{user:a}:offline"[..]));
    }
}

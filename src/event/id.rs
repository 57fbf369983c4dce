//! Event ids (UUIDv7) and timestamps.

use std::cell::Cell;
use std::time::{SystemTime, UNIX_EPOCH};

/// Nanoseconds since the Unix epoch.
pub fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

thread_local! {
    static RNG: Cell<u64> = Cell::new({
        let mut seed = [0u8; 8];
        getrandom::fill(&mut seed).expect("the OS random source is available");
        u64::from_le_bytes(seed) | 1
    });
}

/// wyrand: fast, good enough for the random bits of a UUIDv7 (uniqueness, not secrecy).
fn next_random() -> u64 {
    RNG.with(|s| {
        let x = s.get().wrapping_add(0xa076_1d64_78bd_642f);
        s.set(x);
        let t = (x as u128).wrapping_mul((x ^ 0xe703_7ed1_a0b4_28db) as u128);
        ((t >> 64) ^ t) as u64
    })
}

/// A new UUIDv7 (RFC 9562): 48-bit Unix ms, version 7, 74 random bits.
pub fn new_uuid_v7() -> String {
    let ms = (now_ns() / 1_000_000) as u64;
    let r1 = next_random();
    let r2 = next_random();
    let hi = (ms << 16) | 0x7000 | (r1 & 0x0fff);
    let lo = (r2 & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
    let mut buf = [0u8; 36];
    let hex = b"0123456789abcdef";
    let bytes: [u8; 16] = ((hi as u128) << 64 | lo as u128).to_be_bytes();
    let mut j = 0;
    for (i, b) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            buf[j] = b'-';
            j += 1;
        }
        buf[j] = hex[(b >> 4) as usize];
        buf[j + 1] = hex[(b & 15) as usize];
        j += 2;
    }
    String::from_utf8(buf.to_vec()).expect("ascii")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_v7_shape_and_uniqueness() {
        let a = new_uuid_v7();
        let b = new_uuid_v7();
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "7");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"));
        assert_ne!(a, b);
    }
}

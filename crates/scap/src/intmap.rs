//! Maps keyed by thread, process and descriptor numbers. Replaying a capture looks threads
//! and fds up several times per event; std's default SipHash (built to resist hash flooding
//! by chosen keys) cost 7% of `inspect --events` time. Ids in a capture are small integers,
//! so one multiply-rotate per key spreads them well enough.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A map from a thread, process or fd number.
pub type IntMap<V> = HashMap<i64, V, BuildHasherDefault<IntHasher>>;

/// The hasher of [`IntMap`] (the multiply-rotate of rustc's FxHasher).
#[derive(Debug, Default, Clone, Copy)]
pub struct IntHasher(u64);

const K: u64 = 0x517c_c1b7_2722_0a95;

impl Hasher for IntHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(K);
    }

    fn write_i64(&mut self, n: i64) {
        self.write_u64(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearby_ids_land_apart_and_the_map_behaves_like_a_map() {
        let h = |n: i64| {
            let mut s = IntHasher::default();
            s.write_i64(n);
            s.finish()
        };
        assert_ne!(h(1) >> 57, h(2) >> 57); // hashbrown's control bits differ
        let mut m: IntMap<&str> = IntMap::default();
        m.insert(-100, "cwd");
        m.insert(3, "three");
        assert_eq!(m.get(&-100), Some(&"cwd"));
        assert_eq!(m.remove(&3), Some("three"));
        assert!(!m.contains_key(&3));
    }
}

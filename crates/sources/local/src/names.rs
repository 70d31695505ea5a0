//! Names and identities the way Kubernetes makes them: UIDs, a Deployment's
//! `pod-template-hash`, and the random 5-character suffix of generated pod names.

use std::sync::atomic::{AtomicU64, Ordering};

/// The alphabet of generated names (apimachinery's SafeEncodeString: no vowels, no 0/1/3).
const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

static SEED: AtomicU64 = AtomicU64::new(0);

/// A pseudo-random number (splitmix64 seeded from the clock and the process id).
fn next() -> u64 {
    let mut s = SEED.load(Ordering::Relaxed);
    if s == 0 {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        s = t ^ (u64::from(std::process::id()) << 32);
    }
    s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
    SEED.store(s, Ordering::Relaxed);
    let mut z = s;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A random RFC 4122 version-4 UID, as the API server assigns.
pub fn uid() -> String {
    let hi = next();
    let lo = next();
    let b = |x: u64, n: u32| (x >> n) & 0xffff;
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        hi >> 32,
        b(hi, 16),
        b(hi, 0) & 0xfff,
        (b(lo, 48) & 0x3fff) | 0x8000,
        lo & 0xffff_ffff_ffff
    )
}

/// Five random characters, as the ReplicaSet controller appends to pod names.
pub fn suffix() -> String {
    (0..5)
        .map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize] as char)
        .collect()
}

/// The `pod-template-hash` of a Deployment's pod template: FNV-1a of the template, written
/// in the safe alphabet, so the same template always gives the same ReplicaSet name.
pub fn template_hash(template: &serde_json::Value) -> String {
    let mut h: u32 = 0x811c_9dc5;
    for byte in template.to_string().bytes() {
        h ^= u32::from(byte);
        h = h.wrapping_mul(0x0100_0193);
    }
    h.to_string()
        .bytes()
        .map(|d| ALPHABET[usize::from(d) % ALPHABET.len()] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_look_like_kubernetes_names() {
        let u = uid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert_ne!(uid(), uid());
        let s = suffix();
        assert_eq!(s.len(), 5);
        assert!(s.bytes().all(|c| ALPHABET.contains(&c)));
        let t = serde_json::json!({"spec": {"containers": [{"name": "nginx"}]}});
        assert_eq!(template_hash(&t), template_hash(&t.clone()));
        assert_ne!(template_hash(&t), template_hash(&serde_json::json!({})));
    }
}

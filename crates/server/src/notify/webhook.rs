//! The generic webhook: the notification as JSON, signed so the receiver can tell it came from
//! this server — `X-Crashscope-Signature: sha256=<hex HMAC-SHA256 of timestamp.body>` with the
//! timestamp in `X-Crashscope-Timestamp` (so an old delivery cannot be replayed later).

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::Notification;

/// The JSON body.
pub fn body(n: &Notification) -> Vec<u8> {
    let doc = serde_json::json!({
        "version": "1",
        "status": n.status,
        "alert": n,
    });
    serde_json::to_vec(&doc).unwrap_or_default()
}

/// The signature headers for `body` (none without a secret).
pub fn headers(body: &[u8], secret: Option<&str>) -> Vec<(&'static str, String)> {
    let Some(secret) = secret else {
        return vec![];
    };
    let ts = jiff::Timestamp::now().as_second().to_string();
    vec![
        (
            "x-crashscope-signature",
            format!("sha256={}", sign(secret, &ts, body)),
        ),
        ("x-crashscope-timestamp", ts),
    ]
}

/// The hex HMAC-SHA256 of `timestamp.body` under `secret`; what a receiver recomputes.
pub fn sign(secret: &str, timestamp: &str, body: &[u8]) -> String {
    hmac_hex(secret, &[timestamp.as_bytes(), b".", body])
}

fn hmac_hex(secret: &str, parts: &[&[u8]]) -> String {
    // HMAC takes keys of any length.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    for p in parts {
        mac.update(p);
    }
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_and_signs_timestamp_dot_body() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            hmac_hex("Jefe", &[b"what do ya want ", b"for nothing?"]),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(sign("k", "17", b"{}"), hmac_hex("k", &[b"17.{}"]));
        assert_ne!(sign("k", "18", b"{}"), sign("k", "17", b"{}"));
    }
}

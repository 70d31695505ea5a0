//! Kubernetes resource quantities ("128Mi", "1G", "500m", "1e3"): their value, for comparing
//! requests with limits and for memory limits in bytes.

/// The value of a quantity in its base unit (cores, bytes), or `None` when it is invalid.
pub fn value(q: &str) -> Option<f64> {
    let q = q.trim();
    let split = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(q.len());
    let (num, suffix) = q.split_at(split);
    let value: f64 = num.parse().ok()?;
    let mult: f64 = match suffix {
        "" => 1.0,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        "m" => 1e-3,
        s if s.starts_with('e') || s.starts_with('E') => 10f64.powi(s[1..].parse().ok()?),
        _ => return None,
    };
    let v = value * mult;
    (v.is_finite() && v >= 0.0).then_some(v)
}

/// Bytes of a memory quantity (rounded up), or `None` when it is not a valid quantity.
pub fn bytes(q: &str) -> Option<u64> {
    let v = value(q)?.ceil();
    (v < u64::MAX as f64).then_some(v as u64)
}

#[cfg(test)]
mod tests {
    use super::{bytes, value};

    #[test]
    fn quantities() {
        assert_eq!(bytes("128Mi"), Some(128 * 1024 * 1024));
        assert_eq!(bytes("1G"), Some(1_000_000_000));
        assert_eq!(bytes("1e3"), Some(1000));
        assert_eq!(bytes("64"), Some(64));
        assert_eq!(bytes("lots"), None);
        assert_eq!(bytes("12Qi"), None);
        assert_eq!(value("1000m"), value("1"));
        assert_eq!(value("0m"), Some(0.0));
    }
}

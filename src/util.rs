//! Small pure helpers shared across modules.

use serde_json::Value;

/// FNV-1a, 64 bit: a stable hash for change detection (not for security).
pub fn fnv64(bytes: impl IntoIterator<Item = u8>) -> u64 {
    use std::hash::Hasher;
    let mut hasher = fnv::FnvHasher::default();
    for byte in bytes {
        hasher.write_u8(byte);
    }
    hasher.finish()
}

/// JSON merge patch (RFC 7386) of `patch` into `target`: objects merge, null removes, the rest
/// replaces.
pub fn merge_json(target: &mut Value, patch: &Value) {
    json_patch::merge(target, patch);
}

/// `count` bytes from the kernel's random source (for the generated root password).
pub fn random_bytes(count: usize) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = vec![0u8; count];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_follows_rfc_7386() {
        let mut target = json!({"a": {"b": 1, "c": 2}, "d": [1], "e": 1});
        merge_json(
            &mut target,
            &json!({"a": {"b": 3, "c": null}, "d": [2, 3], "f": "x"}),
        );
        assert_eq!(
            target,
            json!({"a": {"b": 3}, "d": [2, 3], "e": 1, "f": "x"})
        );
    }

    #[test]
    fn fnv64_is_stable() {
        assert_eq!(fnv64(*b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv64(*b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}

//! Small pure helpers shared across modules.

use serde_json::Value;

/// FNV-1a, 64 bit: a stable, dependency-free hash for change detection (not for security).
pub fn fnv64(bytes: impl IntoIterator<Item = u8>) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// JSON merge patch (RFC 7386) of `patch` into `target`: objects merge, null removes, the rest
/// replaces.
pub fn merge_json(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(target), Value::Object(patch)) => {
            for (key, value) in patch {
                if value.is_null() {
                    target.remove(key);
                } else {
                    merge_json(target.entry(key.clone()).or_insert(Value::Null), value);
                }
            }
        }
        (target, patch) => *target = patch.clone(),
    }
}

/// The JSON merge patch that turns `previous` into `next`: `next` itself, plus a null for every
/// key `previous` had and `next` lacks (a merge patch that merely omits a key keeps it).
pub fn merge_patch_between(previous: &Value, next: &Value) -> Value {
    match (previous, next) {
        (Value::Object(previous), Value::Object(next)) => {
            let mut patch = serde_json::Map::new();
            for (key, value) in next {
                let nested = previous
                    .get(key)
                    .map_or_else(|| value.clone(), |old| merge_patch_between(old, value));
                patch.insert(key.clone(), nested);
            }
            for key in previous.keys().filter(|k| !next.contains_key(*k)) {
                patch.insert(key.clone(), Value::Null);
            }
            Value::Object(patch)
        }
        (_, next) => next.clone(),
    }
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
    fn a_merge_patch_between_two_documents_removes_what_went() {
        let previous =
            json!({"mds": {"primary": "a", "ready": "3/3"}, "phase": "Available", "gone": 1});
        let next = json!({"mds": {"ready": "2/3"}, "phase": "Degraded"});
        let patch = merge_patch_between(&previous, &next);
        assert_eq!(
            patch,
            json!({"mds": {"ready": "2/3", "primary": null}, "phase": "Degraded", "gone": null})
        );
        let mut applied = previous.clone();
        merge_json(&mut applied, &patch);
        assert_eq!(applied, next);
    }

    #[test]
    fn fnv64_is_stable() {
        assert_eq!(fnv64(*b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv64(*b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}

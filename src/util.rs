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

/// [`fnv64`] of the parts one after the other, a slice at a time: the same value, without a
/// call per byte (the pods' tokens hash every pod's name each decision).
pub fn fnv64_parts<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> u64 {
    use std::hash::Hasher;
    let mut hasher = fnv::FnvHasher::default();
    for part in parts {
        hasher.write(part);
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

    #[test]
    fn fnv64_of_parts_is_fnv64_of_their_bytes() {
        let parts: [&[u8]; 4] = [b"demo-chunkserver-0-1", b"\0", b"", b"uid-1\0\x01"];
        assert_eq!(fnv64_parts(parts), fnv64(parts.concat()));
        assert_eq!(fnv64_parts([]), fnv64(*b""));
    }
}

/// How many items a status message or list names of a list that grows with the cluster (a
/// ChunkServer per disk: 12,000 at 1000 servers × 12 disks); the rest are counted, so the
/// CurveCluster stays within the API server's object size (tests/limits.rs).
pub const SHOWN_ITEMS: usize = 10;

/// The first [`SHOWN_ITEMS`] of `items` joined by `separator`, then `… and N more` for the rest.
pub fn first_of<S: AsRef<str>>(items: &[S], separator: &str) -> String {
    let shown: Vec<&str> = items.iter().take(SHOWN_ITEMS).map(AsRef::as_ref).collect();
    let mut text = shown.join(separator);
    if items.len() > SHOWN_ITEMS {
        text.push_str(&format!(" … and {} more", items.len() - SHOWN_ITEMS));
    }
    text
}

#[cfg(test)]
mod first_of_tests {
    use super::{SHOWN_ITEMS, first_of};

    #[test]
    fn names_the_first_items_and_counts_the_rest() {
        assert_eq!(first_of(&["a", "b"], ", "), "a, b");
        let many: Vec<String> = (0..SHOWN_ITEMS + 3).map(|i| i.to_string()).collect();
        assert_eq!(first_of(&many, " "), "0 1 2 3 4 5 6 7 8 9 … and 3 more");
        assert_eq!(first_of::<&str>(&[], ", "), "");
    }
}

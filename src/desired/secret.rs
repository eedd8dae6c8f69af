//! The cluster's Curve root password, in a Secret the operator creates once and then keeps.
//!
//! Curve checks the root password at every MDS start against `mds.auth.rootPassword`; the
//! tools and ChunkServers send it. The image ships a public default, so each cluster gets its
//! own random one. It reaches the pods only through `secretKeyRef` in their config init
//! container: never a ConfigMap, an annotation, a log line or the status.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;

use super::common::{ROOT_PASSWORD_KEY, object_meta};
use crate::names::{Component, labels, root_secret_name};
use crate::validate::ValidatedCluster;

/// Characters of a generated password: letters and digits only, so it needs no quoting in
/// Curve's `key=value` files or on a command line.
const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
pub const PASSWORD_LENGTH: usize = 32;

/// A password from random bytes (62 symbols: each byte below 248 = 4 × 62 maps without bias;
/// the rest are skipped). Returns None when `random` ran out before the password was complete.
pub fn password_from(random: impl IntoIterator<Item = u8>) -> Option<String> {
    let usable = (256 / ALPHABET.len() * ALPHABET.len()) as u8;
    let password: String = random
        .into_iter()
        .filter(|byte| *byte < usable)
        .map(|byte| ALPHABET[byte as usize % ALPHABET.len()] as char)
        .take(PASSWORD_LENGTH)
        .collect();
    (password.len() == PASSWORD_LENGTH).then_some(password)
}

/// The root Secret with `password`. Owned by the CurveCluster, so it goes with it.
pub fn root_secret(cluster: &ValidatedCluster, password: &str) -> Secret {
    Secret {
        metadata: object_meta(
            cluster,
            root_secret_name(&cluster.name),
            labels(&cluster.name, Component::Mds),
        ),
        type_: Some("Opaque".to_string()),
        string_data: Some(BTreeMap::from([(
            ROOT_PASSWORD_KEY.to_string(),
            password.to_string(),
        )])),
        ..Secret::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_use_letters_and_digits_without_bias_bytes() {
        let password = password_from((0..=255u8).cycle()).unwrap();
        assert_eq!(password.len(), PASSWORD_LENGTH);
        assert!(password.bytes().all(|b| b.is_ascii_alphanumeric()));
        // Bytes 248..=255 would favour the first 8 symbols: they are skipped.
        assert_eq!(password_from([248u8, 255].repeat(100)), None);
        assert_eq!(
            password_from([0u8; 10]),
            None,
            "too few bytes give no password"
        );
    }
}

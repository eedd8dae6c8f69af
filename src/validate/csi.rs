//! `spec.csi`: what curve-csi and the API server would refuse, named by field.

use super::{Errors, k8s, quoted};
use crate::api::CsiSpec;
use crate::api::rules::CSI_USER_MAX_LEN;

/// Checked whether or not csi is enabled: a spec that turns it on later must not meet new
/// refusals then.
pub(super) fn check(csi: &CsiSpec, errors: &mut Errors) {
    for (path, image) in csi.images.fields() {
        if image.trim().is_empty() {
            errors.push(path, format!("must name an image (got {})", quoted(image)));
        } else {
            errors.check(path, image, k8s::image_reference);
        }
    }
    let class = &csi.storage_class;
    errors.check(
        "spec.csi.storageClass.name",
        &class.name,
        k8s::dns1123_subdomain,
    );
    // curve-csi's newVolumeOptions (pkg/curve/volumeoptions.go:65-67 at ed02bd6) counts
    // bytes (Go's len), and refuses every CreateVolume of the class otherwise.
    let bytes = class.user.len();
    if !(1..=CSI_USER_MAX_LEN).contains(&bytes) {
        errors.push(
            "spec.csi.storageClass.user",
            format!(
                "must be 1 to {CSI_USER_MAX_LEN} bytes, as curve-csi requires (got {} of {bytes} bytes)",
                quoted(&class.user)
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use crate::validate::tests::minimal;
    use crate::validate::{InvalidCluster, parse_cluster, validate};

    fn errors_for(csi: Value) -> Vec<String> {
        let mut value = minimal();
        crate::util::merge_json(&mut value, &json!({"spec": {"csi": csi}}));
        let cluster = parse_cluster(&value).unwrap();
        match validate(&cluster, "default") {
            Ok(_) => Vec::new(),
            Err(InvalidCluster(errors)) => errors.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn each_csi_rule_refuses_with_its_field_and_accepts_its_neighbour() {
        let cases = [
            (
                json!({"storageClass": {"user": ""}}),
                "spec.csi.storageClass.user: must be 1 to 30 bytes, as curve-csi requires (got \"\" of 0 bytes)",
                json!({"storageClass": {"user": "u"}}),
            ),
            (
                json!({"storageClass": {"user": "u".repeat(31)}}),
                "spec.csi.storageClass.user: must be 1 to 30 bytes, as curve-csi requires (got \"uuuuuuuuuuuuuuuuuuuuuuuuuuuuuuu\" of 31 bytes)",
                json!({"storageClass": {"user": "u".repeat(30)}}),
            ),
            (
                // 15 characters, 30 bytes: curve-csi counts bytes.
                json!({"storageClass": {"user": "é".repeat(16)}}),
                "spec.csi.storageClass.user: must be 1 to 30 bytes, as curve-csi requires (got \"éééééééééééééééé\" of 32 bytes)",
                json!({"storageClass": {"user": "é".repeat(15)}}),
            ),
            (
                json!({"storageClass": {"name": "Curve_SC"}}),
                "spec.csi.storageClass.name: must be a DNS-1123 subdomain: lower-case letters, digits, '-' and '.', starting and ending with a letter or digit (got \"Curve_SC\")",
                json!({"storageClass": {"name": "curve.fast"}}),
            ),
            (
                json!({"images": {"plugin": "curvecsi/curve-csi:v3.0.1 "}}),
                "spec.csi.images.plugin: must not have leading or trailing whitespace (got \"curvecsi/curve-csi:v3.0.1 \")",
                json!({"images": {"plugin": "curvecsi/curve-csi:v3.0.1"}}),
            ),
            (
                json!({"images": {"resizer": ""}}),
                "spec.csi.images.resizer: must name an image (got \"\")",
                json!({"images": {"resizer": "registry.example.com/csi-resizer:v1.2.0"}}),
            ),
        ];
        for (bad, refusal, good) in cases {
            assert_eq!(errors_for(bad.clone()), vec![refusal.to_string()], "{bad}");
            assert_eq!(errors_for(good.clone()), Vec::<String>::new(), "{good}");
        }
    }

    #[test]
    fn csi_defaults_are_curve_csis_own_and_valid() {
        let csi = crate::api::CsiSpec::default();
        assert!(!csi.enabled);
        assert_eq!(csi.images.plugin, "curvecsi/curve-csi:v3.0.1");
        assert_eq!(
            (
                csi.storage_class.name.as_str(),
                csi.storage_class.user.as_str()
            ),
            ("curve", "k8s")
        );
        assert_eq!(errors_for(json!({"enabled": true})), Vec::<String>::new());
    }
}

//! Copies of etcd snapshots in an S3-compatible bucket (`spec.etcd.backup.s3`): what the backup
//! Job's `upload` container runs (`curve-operator s3-upload`, [`upload`]).
//!
//! The Curve image cannot upload (its curl 7.52 predates `--aws-sigv4`), so the copy is made by
//! the operator's own image, after the snapshot verified on the claim. Requests are signed with
//! SigV4 ([`sigv4`]) and addressed path-style (`<endpoint>/<bucket>/<key>`): S3-compatible
//! servers (MinIO, Ceph RGW, moto) serve it without a DNS name per bucket, and AWS S3 still
//! does. This module holds the pure pieces: the bucket's layout, its answers read, the prune
//! choice, the result line.

pub mod client;
pub mod sigv4;
pub mod upload;

use serde_json::{Map, Value};

/// S3's largest single PUT: a larger object needs a multipart upload.
pub const MAX_SINGLE_PUT: u64 = 5 << 30;
/// Parts of a multipart upload: an 8 GiB database (etcd's largest quota) in 16 parts, far
/// from S3's 10000, each above its 5 MiB least.
pub const PART_SIZE: u64 = 512 << 20;
/// S3's smallest part but the last.
pub const MIN_PART_SIZE: u64 = 5 << 20;
/// S3's most parts.
pub const MAX_PARTS: u64 = 10_000;

/// The keys of one snapshot in the bucket: `<prefix><name>.db`, then `<prefix><name>.json`,
/// written last, as on the claim: a database without its `.json` is not a verified copy.
pub fn keys(prefix: &str, name: &str) -> (String, String) {
    (format!("{prefix}{name}.db"), format!("{prefix}{name}.json"))
}

/// The snapshot name of a key under `prefix` with `suffix`, if it is one the backup writes
/// (`etcd-YYYYMMDDTHHMMSSZ`).
fn snapshot_name<'a>(key: &'a str, prefix: &str, suffix: &str) -> Option<&'a str> {
    let name = key.strip_prefix(prefix)?.strip_suffix(suffix)?;
    let stamp = name.strip_prefix("etcd-")?.as_bytes();
    let shaped = stamp.len() == 16
        && stamp[8] == b'T'
        && stamp[15] == b'Z'
        && (stamp[..8].iter().chain(&stamp[9..15])).all(u8::is_ascii_digit);
    shaped.then_some(name)
}

/// The keys to delete so that `keep` verified copies stay, the one just uploaded (`newest`)
/// among them: the `.json` of the oldest ones beyond `keep` before their `.db` (so a prune cut
/// short leaves an unverified database, never a marker without its data), then every `.db`
/// older than `newest` without its `.json` (a copy whose upload failed). Keys the backup did
/// not write are never chosen.
pub fn prune_choice(listed: &[String], prefix: &str, newest: &str, keep: usize) -> Vec<String> {
    let mut verified: Vec<&str> = (listed.iter())
        .filter_map(|k| snapshot_name(k, prefix, ".json"))
        .collect();
    verified.sort_unstable_by(|a, b| b.cmp(a));
    let mut chosen = Vec::new();
    for name in verified.iter().skip(keep) {
        if *name == newest {
            continue;
        }
        let (db, json) = keys(prefix, name);
        chosen.push(json);
        if listed.contains(&db) {
            chosen.push(db);
        }
    }
    for key in listed {
        let Some(name) = snapshot_name(key, prefix, ".db") else {
            continue;
        };
        if name < newest && !verified.contains(&name) {
            chosen.push(key.clone());
        }
    }
    chosen
}

/// The text of the first `<tag>…</tag>` in `xml`, unescaped.
fn element<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{tag}>"))? + start;
    Some(&xml[start..end])
}

/// XML's five predefined entities and numeric references.
fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let Some(end) = rest.find(';') else { break };
        let entity = &rest[1..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => (entity.strip_prefix("#x"))
                .map(|h| u32::from_str_radix(h, 16))
                .or_else(|| entity.strip_prefix('#').map(str::parse))
                .and_then(Result::ok)
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// One page of a ListObjectsV2 answer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListPage {
    pub keys: Vec<String>,
    /// The token of the next page, when the listing is truncated.
    pub next: Option<String>,
}

/// Reads a ListObjectsV2 answer (`<ListBucketResult>`): each `<Contents>`'s `<Key>`, and
/// `<NextContinuationToken>` when `<IsTruncated>` is true.
pub fn parse_list(xml: &str) -> Result<ListPage, String> {
    if !xml.contains("<ListBucketResult") {
        return Err(format!("not a ListObjectsV2 answer: {}", cut(xml)));
    }
    let mut keys = Vec::new();
    let mut rest = xml;
    while let Some(at) = rest.find("<Contents>") {
        let end = (rest[at..].find("</Contents>"))
            .ok_or_else(|| format!("an unterminated <Contents>: {}", cut(xml)))?
            + at;
        let key = element(&rest[at..end], "Key")
            .ok_or_else(|| format!("a <Contents> without <Key>: {}", cut(xml)))?;
        keys.push(unescape(key));
        rest = &rest[end..];
    }
    let truncated = element(xml, "IsTruncated") == Some("true");
    let next = truncated
        .then(|| element(xml, "NextContinuationToken").map(unescape))
        .flatten();
    if truncated && next.is_none() {
        return Err("a truncated listing without NextContinuationToken".into());
    }
    Ok(ListPage { keys, next })
}

/// The `<UploadId>` of a CreateMultipartUpload answer.
pub fn parse_upload_id(xml: &str) -> Result<String, String> {
    (element(xml, "UploadId").map(unescape))
        .filter(|id| !id.is_empty())
        .ok_or_else(|| format!("no UploadId in the answer: {}", cut(xml)))
}

/// The body of CompleteMultipartUpload: each part's number and ETag, in order.
pub fn complete_body(etags: &[String]) -> String {
    let parts: String = (etags.iter().enumerate())
        .map(|(i, etag)| {
            let etag = etag.replace('&', "&amp;").replace('<', "&lt;");
            format!(
                "<Part><PartNumber>{}</PartNumber><ETag>{etag}</ETag></Part>",
                i + 1
            )
        })
        .collect();
    format!("<CompleteMultipartUpload>{parts}</CompleteMultipartUpload>")
}

/// What S3 said of a refused request: `<status> <Code>: <Message>` from its `<Error>` body.
pub fn error_text(status: u16, body: &str) -> String {
    match (element(body, "Code"), element(body, "Message")) {
        (Some(code), Some(message)) => {
            format!("{status} {}: {}", unescape(code), unescape(message))
        }
        (Some(code), None) => format!("{status} {}", unescape(code)),
        _ if body.trim().is_empty() => format!("{status} with an empty body"),
        _ => format!("{status}: {}", cut(body)),
    }
}

/// A body cut for a message.
fn cut(text: &str) -> String {
    let one_line = text.trim().replace('\n', " ");
    match one_line.char_indices().nth(300) {
        Some((at, _)) => format!("{}…", &one_line[..at]),
        None => one_line,
    }
}

/// The parts of a multipart upload of `size` bytes: (offset, length) each.
pub fn parts(size: u64, part_size: u64) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut offset = 0;
    while offset < size {
        let length = part_size.min(size - offset);
        out.push((offset, length));
        offset += length;
    }
    out
}

/// The Job's result once the copy is made: the snapshot's own result line, plus where the
/// copy is and how many older copies were deleted.
pub fn success_line(snapshot: &Map<String, Value>, copy_url: &str, pruned: usize) -> String {
    let mut result = snapshot.clone();
    result.insert("bucketCopy".into(), Value::from(copy_url));
    result.insert("bucketPruned".into(), Value::from(pruned));
    Value::Object(result).to_string()
}

/// The Job's result when the copy failed: the snapshot stays verified on the claim.
pub fn failure_line(member: &str, reason: &str) -> String {
    // The termination message holds 4096 bytes.
    let reason: String = reason.chars().take(3000).collect();
    serde_json::json!({"result": "failure", "member": member, "reason": reason}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(keys: &[&str]) -> Vec<String> {
        keys.iter().map(|k| k.to_string()).collect()
    }

    #[test]
    fn prune_keeps_the_newest_verified_and_drops_failed_uploads() {
        let p = "ns/demo/";
        let listed = strings(&[
            "ns/demo/etcd-20261201T030000Z.db",
            "ns/demo/etcd-20261201T030000Z.json",
            "ns/demo/etcd-20261202T030000Z.db",
            "ns/demo/etcd-20261202T030000Z.json",
            // An upload that failed before its marker.
            "ns/demo/etcd-20261203T030000Z.db",
            "ns/demo/etcd-20261204T030000Z.db",
            "ns/demo/etcd-20261204T030000Z.json",
            "ns/demo/etcd-20261205T030000Z.db",
            "ns/demo/etcd-20261205T030000Z.json",
            // Not the backup's: never touched.
            "ns/demo/notes.txt",
            "ns/demo/etcd-latest.json",
            "ns/demo/sub/etcd-20261101T030000Z.json",
        ]);
        assert_eq!(
            prune_choice(&listed, p, "etcd-20261205T030000Z", 2),
            strings(&[
                "ns/demo/etcd-20261202T030000Z.json",
                "ns/demo/etcd-20261202T030000Z.db",
                "ns/demo/etcd-20261201T030000Z.json",
                "ns/demo/etcd-20261201T030000Z.db",
                "ns/demo/etcd-20261203T030000Z.db",
            ])
        );
        assert_eq!(
            prune_choice(&listed, p, "etcd-20261205T030000Z", 10),
            strings(&["ns/demo/etcd-20261203T030000Z.db"])
        );
    }

    #[test]
    fn prune_never_chooses_the_new_copy_nor_a_newer_one_without_its_marker() {
        // A clock set back: the new copy sorts before older ones; it stays all the same.
        let listed = strings(&[
            "etcd-20261205T030000Z.db",
            "etcd-20261205T030000Z.json",
            "etcd-20261101T030000Z.db",
            "etcd-20261101T030000Z.json",
            "etcd-20261206T030000Z.db",
        ]);
        assert_eq!(
            prune_choice(&listed, "", "etcd-20261101T030000Z", 1),
            strings(&[])
        );
    }

    #[test]
    fn a_list_answer_is_read_with_its_continuation() {
        let page = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix>ns/demo/</Prefix>
<KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>true</IsTruncated>
<Contents><Key>ns/demo/etcd-20261201T030000Z.db</Key><LastModified>2026-12-01T03:00:01.000Z</LastModified><ETag>&quot;abc&quot;</ETag><Size>20512</Size></Contents>
<Contents><Key>ns/demo/a&amp;b&lt;c&#x20;d&#233;</Key><Size>3</Size></Contents>
<NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken></ListBucketResult>"#;
        assert_eq!(
            parse_list(page),
            Ok(ListPage {
                keys: strings(&["ns/demo/etcd-20261201T030000Z.db", "ns/demo/a&b<c dé"]),
                next: Some("1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=".into()),
            })
        );
        let last = "<ListBucketResult><IsTruncated>false</IsTruncated><KeyCount>0</KeyCount></ListBucketResult>";
        assert_eq!(parse_list(last), Ok(ListPage::default()));
        assert_eq!(
            parse_list("<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>"),
            Err("a truncated listing without NextContinuationToken".into())
        );
        assert_eq!(
            parse_list("<html>proxy error</html>"),
            Err("not a ListObjectsV2 answer: <html>proxy error</html>".into())
        );
    }

    #[test]
    fn s3_errors_are_told_by_code_and_message() {
        let body = r#"<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match the signature you provided. Check your key &amp; signing method.</Message><RequestId>4442587FB7D0A2F9</RequestId></Error>"#;
        assert_eq!(
            error_text(403, body),
            "403 SignatureDoesNotMatch: The request signature we calculated does not match the signature you provided. Check your key & signing method."
        );
        assert_eq!(
            error_text(404, "<Error><Code>NoSuchBucket</Code></Error>"),
            "404 NoSuchBucket"
        );
        assert_eq!(error_text(502, ""), "502 with an empty body");
        assert_eq!(error_text(502, "Bad Gateway"), "502: Bad Gateway");
    }

    #[test]
    fn multipart_pieces() {
        assert_eq!(parts(11, 5), vec![(0, 5), (5, 5), (10, 1)]);
        assert_eq!(parts(10, 5), vec![(0, 5), (5, 5)]);
        assert_eq!(parts(8 << 30, PART_SIZE).len(), 16);
        assert_eq!(
            complete_body(&["\"a1\"".into(), "\"b2\"".into()]),
            "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>\"a1\"</ETag></Part><Part><PartNumber>2</PartNumber><ETag>\"b2\"</ETag></Part></CompleteMultipartUpload>"
        );
        assert_eq!(
            parse_upload_id(
                "<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key><UploadId>VXBsb2Fk</UploadId></InitiateMultipartUploadResult>"
            ),
            Ok("VXBsb2Fk".into())
        );
        assert!(parse_upload_id("<InitiateMultipartUploadResult/>").is_err());
    }

    #[test]
    fn result_lines() {
        let snapshot: Map<String, Value> = serde_json::from_str(
            r#"{"result":"success","name":"etcd-20261207T030000Z","takenAt":"2026-12-07T03:00:00Z","member":"demo-etcd-1","size":20512,"revision":7,"totalKey":3,"hash":1,"pruned":0}"#,
        )
        .unwrap();
        let line = success_line(
            &snapshot,
            "http://minio:9000/backups/ns/demo/etcd-20261207T030000Z.db",
            2,
        );
        let parsed: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            parsed,
            serde_json::json!({"result":"success","name":"etcd-20261207T030000Z","takenAt":"2026-12-07T03:00:00Z","member":"demo-etcd-1","size":20512,"revision":7,"totalKey":3,"hash":1,"pruned":0,
                "bucketCopy":"http://minio:9000/backups/ns/demo/etcd-20261207T030000Z.db","bucketPruned":2})
        );
        let long = "x".repeat(5000);
        let failure: Value = serde_json::from_str(&failure_line("demo-etcd-1", &long)).unwrap();
        assert_eq!(failure["reason"].as_str().unwrap().len(), 3000);
        assert_eq!(failure["result"], "failure");
    }
}

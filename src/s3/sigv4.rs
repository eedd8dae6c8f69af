//! AWS Signature Version 4 of one request, as S3 checks it
//! (<https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html>). Pure.
//!
//! S3 differs from the other services in one point: the canonical URI is the path encoded
//! once, not twice. The payload's SHA-256 is always signed (`x-amz-content-sha256`), so the
//! server refuses a body that changed on the way.

use ring::digest::{SHA256, digest};
use ring::hmac;

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// SHA-256 of nothing: the payload hash of a request without a body.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key: String,
    pub secret_key: String,
}

impl std::fmt::Debug for Credentials {
    // The secret never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, <secret>)", self.access_key)
    }
}

/// What is signed of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signable<'a> {
    pub method: &'a str,
    /// The path, not yet encoded (`/bucket/key`).
    pub path: &'a str,
    /// Query parameters, not yet encoded (`("list-type", "2")`; a flag such as `uploads` has an
    /// empty value).
    pub query: &'a [(String, String)],
    /// The headers to sign, `host` and `x-amz-date` among them; names in any case.
    pub headers: &'a [(String, String)],
    /// Hex SHA-256 of the body.
    pub payload_hash: &'a str,
}

/// Percent-encoding as SigV4 wants it: every byte but `A-Za-z0-9-._~` (and `/` when
/// `keep_slash`) as `%XY` in upper case.
pub fn uri_encode(text: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(byte as char)
            }
            b'/' if keep_slash => out.push('/'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// The query string, encoded and sorted as the canonical request has it (also what is sent).
pub fn canonical_query(query: &[(String, String)]) -> String {
    let mut pairs: Vec<(String, String)> = (query.iter())
        .map(|(k, v)| (uri_encode(k, false), uri_encode(v, false)))
        .collect();
    pairs.sort();
    let pairs: Vec<String> = pairs.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    pairs.join("&")
}

/// The signed headers: lower-case names, values trimmed with inner runs of spaces as one,
/// sorted by name.
fn canonical_headers(headers: &[(String, String)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = (headers.iter())
        .map(|(name, value)| {
            let value = value.split_whitespace().collect::<Vec<_>>().join(" ");
            (name.to_ascii_lowercase(), value)
        })
        .collect();
    out.sort();
    out
}

fn signed_headers(headers: &[(String, String)]) -> String {
    let names: Vec<String> = canonical_headers(headers)
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    names.join(";")
}

/// Task 1: the canonical request.
pub fn canonical_request(request: &Signable) -> String {
    let headers: String = canonical_headers(request.headers)
        .iter()
        .map(|(n, v)| format!("{n}:{v}\n"))
        .collect();
    format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        request.method,
        uri_encode(request.path, true),
        canonical_query(request.query),
        headers,
        signed_headers(request.headers),
        request.payload_hash
    )
}

/// `<date>/<region>/<service>/aws4_request`.
pub fn scope(amz_date: &str, region: &str, service: &str) -> String {
    format!("{}/{region}/{service}/aws4_request", &amz_date[..8])
}

/// Task 2: the string to sign.
pub fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        sha256_hex(canonical_request.as_bytes())
    )
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    hmac::sign(&key, data.as_bytes()).as_ref().to_vec()
}

/// Task 3: the signature, with the key derived from the secret for the scope's day, region
/// and service.
pub fn signature(
    secret_key: &str,
    amz_date: &str,
    region: &str,
    service: &str,
    sts: &str,
) -> String {
    let key = hmac(format!("AWS4{secret_key}").as_bytes(), &amz_date[..8]);
    let key = hmac(&key, region);
    let key = hmac(&key, service);
    let key = hmac(&key, "aws4_request");
    hex(&hmac(&key, sts))
}

/// The `Authorization` header of `request`, sent at `amz_date` (`YYYYMMDDTHHMMSSZ`).
pub fn authorization(
    request: &Signable,
    credentials: &Credentials,
    region: &str,
    service: &str,
    amz_date: &str,
) -> String {
    let scope = scope(amz_date, region, service);
    let sts = string_to_sign(amz_date, &scope, &canonical_request(request));
    format!(
        "{ALGORITHM} Credential={}/{scope}, SignedHeaders={}, Signature={}",
        credentials.access_key,
        signed_headers(request.headers),
        signature(&credentials.secret_key, amz_date, region, service, &sts)
    )
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(digest(&SHA256, bytes).as_ref())
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The credentials and time of AWS's Signature Version 4 test suite
    /// (aws-sig-v4-test-suite, as kept in bazelbuild/bazel third_party/aws-sig-v4-test-suite).
    const SUITE_DATE: &str = "20150830T123600Z";

    fn suite_credentials() -> Credentials {
        Credentials {
            access_key: "AKIDEXAMPLE".into(),
            secret_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        (pairs.iter())
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    fn vanilla<'a>(method: &'a str, headers: &'a [(String, String)]) -> Signable<'a> {
        Signable {
            method,
            path: "/",
            query: &[],
            headers,
            payload_hash: EMPTY_SHA256,
        }
    }

    /// get-vanilla: get-vanilla.creq, .sts and .authz of the suite.
    #[test]
    fn get_vanilla_of_the_test_suite() {
        let headers = headers(&[
            ("Host", "example.amazonaws.com"),
            ("X-Amz-Date", SUITE_DATE),
        ]);
        let request = vanilla("GET", &headers);
        let creq = canonical_request(&request);
        assert_eq!(
            creq,
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let scope = scope(SUITE_DATE, "us-east-1", "service");
        assert_eq!(
            string_to_sign(SUITE_DATE, &scope, &creq),
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\nbb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63"
        );
        assert_eq!(
            authorization(
                &request,
                &suite_credentials(),
                "us-east-1",
                "service",
                SUITE_DATE
            ),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
    }

    /// post-vanilla: post-vanilla.authz of the suite.
    #[test]
    fn post_vanilla_of_the_test_suite() {
        let headers = headers(&[
            ("Host", "example.amazonaws.com"),
            ("X-Amz-Date", SUITE_DATE),
        ]);
        assert_eq!(
            authorization(
                &vanilla("POST", &headers),
                &suite_credentials(),
                "us-east-1",
                "service",
                SUITE_DATE
            ),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"
        );
    }

    /// get-vanilla-query-order-key-case: the query is sorted by name.
    #[test]
    fn query_order_of_the_test_suite() {
        let headers = headers(&[
            ("Host", "example.amazonaws.com"),
            ("X-Amz-Date", SUITE_DATE),
        ]);
        let query = [
            ("Param2".to_string(), "value2".to_string()),
            ("Param1".to_string(), "value1".to_string()),
        ];
        let request = Signable {
            query: &query,
            ..vanilla("GET", &headers)
        };
        let auth = authorization(
            &request,
            &suite_credentials(),
            "us-east-1",
            "service",
            SUITE_DATE,
        );
        assert!(
            auth.ends_with(
                "Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"
            ),
            "{auth}"
        );
    }

    /// S3's own example (GET Object with a Range, sig-v4-header-based-auth.html).
    #[test]
    fn s3_get_object_example() {
        let headers = headers(&[
            ("Host", "examplebucket.s3.amazonaws.com"),
            ("Range", "bytes=0-9"),
            ("x-amz-content-sha256", EMPTY_SHA256),
            ("x-amz-date", "20130524T000000Z"),
        ]);
        let request = Signable {
            path: "/test.txt",
            ..vanilla("GET", &headers)
        };
        let credentials = Credentials {
            access_key: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
        };
        assert_eq!(
            authorization(
                &request,
                &credentials,
                "us-east-1",
                "s3",
                "20130524T000000Z"
            ),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }

    #[test]
    fn encoding_keeps_only_unreserved_bytes_and_slashes_in_paths() {
        assert_eq!(uri_encode("a b/c~d_e.f-g*h", true), "a%20b/c~d_e.f-g%2Ah");
        assert_eq!(uri_encode("ns/demo/", false), "ns%2Fdemo%2F");
        assert_eq!(uri_encode("é", false), "%C3%A9");
        assert_eq!(
            canonical_query(&[
                ("prefix".into(), "ns/demo/".into()),
                ("list-type".into(), "2".into()),
                ("uploads".into(), String::new()),
            ]),
            "list-type=2&prefix=ns%2Fdemo%2F&uploads="
        );
    }

    #[test]
    fn the_secret_stays_out_of_debug_output() {
        let shown = format!("{:?}", suite_credentials());
        assert_eq!(shown, "Credentials(AKIDEXAMPLE, <secret>)");
    }
}

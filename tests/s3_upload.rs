//! Bucket copies of etcd snapshots (`spec.etcd.backup.s3`) against a real S3-compatible
//! server: moto (`moto_server`, PyPI `moto[server]`). `curve-operator s3-upload` runs as the
//! backup Job's copy step does: the database and its marker go up and come back byte for byte,
//! copies beyond `keep` go (foreign keys stay), a database over the single-PUT limit goes up in
//! parts, and a wrong secret key or a missing one fails with the reason in the result; an
//! https:// endpoint is verified against the trusted roots (a test CA made with openssl).
//!
//! moto checks SigV4 signatures once its first actions are spent (INITIAL_NO_AUTH_ACTION_COUNT),
//! but its check refuses a ListObjectsV2 whose prefix holds a `/` even when botocore itself
//! signed it (moto 5.2.1): the prefixed layout is tested on a moto that does not check, the
//! signatures on one that does, with an empty prefix. The signer is also cross-checked with
//! botocore signing the same requests. Both tools are installed by scripts/prereqs.sh
//! (need_test_tools).

#[path = "support/moto.rs"]
mod moto_support;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use serde_json::{Value, json};
use tempfile::TempDir;

use curve_operator::s3::sigv4::{self, Credentials, EMPTY_SHA256, Signable};
use moto_support::{HELPER, Moto, moto, moto_with, python};

/// botocore's Authorization header of each request, signed at its own x-amz-date.
#[test]
fn signatures_agree_with_botocore() {
    let credentials = Credentials {
        access_key: "AKIAIOSFODNN7EXAMPLE".into(),
        secret_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
    };
    let amz_date = "20261207T030004Z";
    let body_hash = sigv4::sha256_hex(b"etcd snapshot bytes");
    // (method, path, query, payload hash): every request the upload sends.
    let q = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        (pairs.iter())
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let requests = [
        (
            "PUT",
            "/backups/ns/demo/etcd-20261207T030004Z.db",
            q(&[]),
            body_hash.as_str(),
        ),
        (
            "GET",
            "/backups",
            q(&[("list-type", "2"), ("prefix", "ns/demo/")]),
            EMPTY_SHA256,
        ),
        (
            "GET",
            "/backups",
            q(&[
                ("list-type", "2"),
                ("prefix", "ns/demo/"),
                ("continuation-token", "1ueGc+LP/x1T="),
            ]),
            EMPTY_SHA256,
        ),
        (
            "POST",
            "/backups/a b/(c)!_.db",
            q(&[("uploads", "")]),
            EMPTY_SHA256,
        ),
        (
            "PUT",
            "/backups/ns/demo/etcd-20261207T030004Z.db",
            q(&[("partNumber", "2"), ("uploadId", "VXBsb2FkIElE+/=")]),
            body_hash.as_str(),
        ),
        (
            "DELETE",
            "/backups/ns/demo/etcd-20261201T030000Z.json",
            q(&[]),
            EMPTY_SHA256,
        ),
    ];
    let mut lines = String::new();
    let mut ours = Vec::new();
    for (method, path, query, hash) in &requests {
        let headers = vec![
            ("host".to_string(), "minio.storage:9000".to_string()),
            ("x-amz-content-sha256".to_string(), hash.to_string()),
            ("x-amz-date".to_string(), amz_date.to_string()),
        ];
        let signable = Signable {
            method,
            path,
            query,
            headers: &headers,
            payload_hash: hash,
        };
        ours.push(sigv4::authorization(
            &signable,
            &credentials,
            "eu-west-1",
            "s3",
            amz_date,
        ));
        let query = sigv4::canonical_query(query);
        let url = format!(
            "http://minio.storage:9000{}{}{query}",
            sigv4::uri_encode(path, true),
            if query.is_empty() { "" } else { "?" }
        );
        let request = json!({"method": method, "url": url,
            "headers": headers.iter().cloned().collect::<std::collections::BTreeMap<_, _>>(),
            "amz_date": amz_date, "region": "eu-west-1",
            "access_key": credentials.access_key, "secret_key": credentials.secret_key});
        lines.push_str(&format!("{request}\n"));
    }
    let theirs: Vec<String> = python(&[HELPER, "sign"], &lines)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(ours, theirs);
}

/// A claim's `snapshots/` with one verified snapshot of `size` bytes and the snapshot step's
/// result file; the bytes differ by name.
fn snapshot(dir: &Path, name: &str, size: usize) -> Vec<u8> {
    let db: Vec<u8> = (0..size)
        .zip(name.bytes().cycle())
        .map(|(i, n)| (i as u32).wrapping_mul(2654435761).to_le_bytes()[3] ^ n)
        .collect();
    std::fs::write(dir.join(format!("{name}.db")), &db).unwrap();
    let marker = json!({"hash": 1, "revision": 7, "totalKey": 3, "totalSize": size, "member": "demo-etcd-0", "takenAt": "2026-12-07T03:00:04Z"});
    std::fs::write(dir.join(format!("{name}.json")), marker.to_string()).unwrap();
    let result = json!({"result": "success", "name": name, "takenAt": "2026-12-07T03:00:04Z",
        "member": "demo-etcd-0", "size": size, "revision": 7, "totalKey": 3, "hash": 1, "pruned": 0});
    std::fs::write(dir.join("result.json"), format!("{result}\n")).unwrap();
    db
}

/// Runs `curve-operator s3-upload` as the copy step; its exit status and result line.
fn upload(moto: &Moto, dir: &Path, keys: Option<(&str, &str)>, args: &[&str]) -> (bool, Value) {
    // No CA bundle (as in an image without one): an http:// endpoint does not need it.
    upload_trusting(moto, dir, keys, args, Path::new("/nonexistent/ca.pem"))
}

/// [`upload`] with `ca_file` as the system's TLS roots.
fn upload_trusting(
    moto: &Moto,
    dir: &Path,
    keys: Option<(&str, &str)>,
    args: &[&str],
    ca_file: &Path,
) -> (bool, Value) {
    let log = dir.join("termination-log");
    let mut command = Command::new(env!("CARGO_BIN_EXE_curve-operator"));
    command.args([
        "s3-upload",
        &format!("--endpoint={}", moto.endpoint),
        "--bucket=backups",
        &format!("--snapshot-result={}", dir.join("result.json").display()),
        &format!("--snapshots-dir={}", dir.display()),
        &format!("--termination-log={}", log.display()),
        "--credentials-secret=s3-keys",
    ]);
    command.args(args);
    command
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("SSL_CERT_FILE", ca_file)
        .env("SSL_CERT_DIR", "/nonexistent");
    if let Some((access, secret)) = keys {
        command
            .env("AWS_ACCESS_KEY_ID", access)
            .env("AWS_SECRET_ACCESS_KEY", secret);
    }
    let out = command.output().unwrap();
    let line = std::fs::read_to_string(&log).unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.trim(), line.trim(), "the result line on stdout too");
    (out.status.success(), serde_json::from_str(&line).unwrap())
}

#[test]
fn copies_come_back_byte_for_byte_and_beyond_keep_go() {
    let moto = moto(false);
    let keys = Some((moto.keys.0.as_str(), moto.keys.1.as_str()));
    let dir = TempDir::new().unwrap();
    let bucket = moto.bucket();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let args = ["--prefix=ns/demo/", "--keep=2"];

    // Keys the backup did not write stay; a database without its marker (a copy cut short)
    // older than the new one goes.
    rt.block_on(async {
        let foreign = bytes::Bytes::from_static(b"not a snapshot");
        for key in [
            "ns/demo/notes.txt",
            "ns/demo/etcd-20261130T030000Z.db",
            "ns/other/etcd-20261101T030000Z.json",
        ] {
            bucket.put_bytes(key, foreign.clone()).await.unwrap();
        }
    });
    let names = [
        "etcd-20261201T030000Z",
        "etcd-20261202T030000Z",
        "etcd-20261203T030000Z",
    ];
    let mut sent = Vec::new();
    let started = Instant::now();
    for (i, name) in names.iter().enumerate() {
        sent.push(snapshot(dir.path(), name, 300_000 + i));
        let (ok, result) = upload(&moto, dir.path(), keys, &args);
        assert!(ok, "{result}");
        assert_eq!(result["result"], "success");
        assert_eq!(result["name"], *name);
        assert_eq!(result["revision"], 7, "the snapshot's own result is kept");
        assert_eq!(
            result["bucketCopy"],
            format!("{}/backups/ns/demo/{name}.db", moto.endpoint)
        );
        // The first run deletes the unmarked database; the third the first copy's pair.
        assert_eq!(result["bucketPruned"], [1, 0, 2][i], "{result}");
    }
    eprintln!(
        "three uploads of ~300 kB, each with its prune: {:?}",
        started.elapsed()
    );
    rt.block_on(async {
        let mut listed = bucket.list("ns/").await.unwrap();
        listed.sort();
        assert_eq!(
            listed,
            [
                "ns/demo/etcd-20261202T030000Z.db",
                "ns/demo/etcd-20261202T030000Z.json",
                "ns/demo/etcd-20261203T030000Z.db",
                "ns/demo/etcd-20261203T030000Z.json",
                "ns/demo/notes.txt",
                "ns/other/etcd-20261101T030000Z.json",
            ]
        );
        for (name, bytes) in names.iter().zip(&sent).skip(1) {
            let got = bucket.get(&format!("ns/demo/{name}.db")).await.unwrap();
            assert!(got == bytes[..], "{name}: the copy's bytes differ");
            let marker = bucket.get(&format!("ns/demo/{name}.json")).await.unwrap();
            let on_claim = std::fs::read(dir.path().join(format!("{name}.json"))).unwrap();
            assert_eq!(marker, on_claim);
        }
    });

    // Over the single-PUT limit (lowered to 5 MiB here): a multipart upload of 3 parts.
    let name = "etcd-20261204T030000Z";
    let big = snapshot(dir.path(), name, (11 << 20) + 3);
    let started = Instant::now();
    let (ok, result) = upload(
        &moto,
        dir.path(),
        keys,
        &[
            &args[..],
            &["--single-put-max=5242880", "--part-size=5242880"],
        ]
        .concat(),
    );
    assert!(ok, "{result}");
    eprintln!("a multipart upload of 11 MiB: {:?}", started.elapsed());
    rt.block_on(async {
        let got = bucket.get(&format!("ns/demo/{name}.db")).await.unwrap();
        assert_eq!(got.len(), big.len());
        assert!(got == big[..], "the multipart copy's bytes differ");
    });
}

#[test]
fn requests_are_signed_and_a_wrong_or_missing_key_is_refused() {
    let moto = moto(true);
    let keys = Some((moto.keys.0.as_str(), moto.keys.1.as_str()));
    let dir = TempDir::new().unwrap();
    let args = ["--prefix=", "--keep=1"];
    // PUT, the listing and DELETE, each checked by moto.
    for (i, name) in ["etcd-20261201T030000Z", "etcd-20261202T030000Z"]
        .iter()
        .enumerate()
    {
        snapshot(dir.path(), name, 1000);
        let (ok, result) = upload(&moto, dir.path(), keys, &args);
        assert!(ok, "{result}");
        assert_eq!(result["bucketPruned"], [0, 2][i], "{result}");
    }
    let name = "etcd-20261203T030000Z";
    snapshot(dir.path(), name, 1000);
    let (ok, result) = upload(
        &moto,
        dir.path(),
        Some((moto.keys.0.as_str(), "wrong")),
        &args,
    );
    assert!(!ok);
    let reason = result["reason"].as_str().unwrap();
    assert_eq!(result["result"], "failure");
    assert_eq!(result["member"], "demo-etcd-0");
    assert!(
        reason.starts_with(&format!(
            "snapshot {name} verified on the claim, but its copy to {}/backups/{name}.db failed: PUT ",
            moto.endpoint
        )) && reason.contains(
            "S3 answered 403 SignatureDoesNotMatch: The request signature we calculated does not match"
        ),
        "{reason}"
    );
    let (ok, result) = upload(&moto, dir.path(), None, &args);
    assert!(!ok);
    assert_eq!(
        result["reason"],
        format!(
            "snapshot {name} verified on the claim, not copied to the bucket: the Secret \"s3-keys\" (spec.etcd.backup.s3.credentialsSecret) does not exist or has no key AWS_ACCESS_KEY_ID"
        )
    );
    let listed = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(moto.bucket().list(""))
        .unwrap();
    assert_eq!(
        listed,
        ["etcd-20261202T030000Z.db", "etcd-20261202T030000Z.json"]
    );
}

/// `openssl` in `dir`: a CA, and a server certificate for 127.0.0.1 it signed.
fn test_ca(dir: &Path) {
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl (scripts/prereqs.sh installs it)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=curve-operator test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ]);
}

#[test]
fn https_endpoints_are_verified_against_the_trusted_roots() {
    let dir = TempDir::new().unwrap();
    test_ca(dir.path());
    let tls = (dir.path().join("server.pem"), dir.path().join("server.key"));
    let moto = moto_with(false, Some((&tls.0, &tls.1)));
    assert!(moto.endpoint.starts_with("https://"), "{}", moto.endpoint);
    let keys = Some((moto.keys.0.as_str(), moto.keys.1.as_str()));
    let snapshots = dir.path().join("snapshots");
    std::fs::create_dir_all(&snapshots).unwrap();
    let name = "etcd-20261207T030000Z";
    let sent = snapshot(&snapshots, name, 100_000);
    let args = ["--prefix=ns/demo/", "--keep=2"];
    // The test CA is not among the roots (the system's): refused before anything is sent.
    let system = Path::new("/etc/ssl/certs/ca-certificates.crt");
    let (ok, result) = upload_trusting(&moto, &snapshots, keys, &args, system);
    assert!(!ok);
    let reason = result["reason"].as_str().unwrap();
    assert!(
        reason.contains("invalid peer certificate: UnknownIssuer"),
        "{reason}"
    );
    // Trusted (as the image's CA bundle trusts a public one): copied, byte for byte.
    let ca = dir.path().join("ca.pem");
    let (ok, result) = upload_trusting(&moto, &snapshots, keys, &args, &ca);
    assert!(ok, "{result}");
    let get = "import sys, botocore.session as s; c = s.get_session().create_client('s3', endpoint_url=sys.argv[1], region_name='us-east-1', aws_access_key_id='a', aws_secret_access_key='b', verify=sys.argv[3]); sys.stdout.buffer.write(c.get_object(Bucket='backups', Key=sys.argv[2])['Body'].read())";
    let key = format!("ns/demo/{name}.db");
    let copy = Command::new("python3")
        .args(["-c", get, &moto.endpoint, &key, &ca.display().to_string()])
        .output()
        .unwrap();
    assert!(
        copy.stdout == sent,
        "the copy's bytes differ: {}",
        String::from_utf8_lossy(&copy.stderr)
    );
}

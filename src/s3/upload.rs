//! `curve-operator s3-upload`: the backup Job's second step. It runs once the snapshot step
//! (desired/etcd-backup.sh) verified a snapshot on the claim and left its result line in a file:
//! the database goes to the bucket, then its `.json` marker, then copies beyond `keep` are
//! deleted. One JSON line goes to the termination message, as the snapshot step's does
//! (reconcile/backup.rs reads it).

use std::path::{Path, PathBuf};

use bytes::Bytes;
use serde_json::{Map, Value};

use super::client::Bucket;
use super::sigv4::Credentials;

/// The environment variables the credentials come in (the keys of `credentialsSecret`).
pub const ACCESS_KEY_ENV: &str = "AWS_ACCESS_KEY_ID";
pub const SECRET_KEY_ENV: &str = "AWS_SECRET_ACCESS_KEY";

#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct UploadArgs {
    /// The S3 API's URL: http(s)://host[:port].
    #[arg(long)]
    pub endpoint: String,
    #[arg(long)]
    pub bucket: String,
    /// Prepended to every key (ends with `/` unless empty).
    #[arg(long, default_value = "")]
    pub prefix: String,
    #[arg(long, default_value = "us-east-1")]
    pub region: String,
    /// How many verified copies stay in the bucket.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub keep: u32,
    /// The snapshot step's result line.
    #[arg(long)]
    pub snapshot_result: PathBuf,
    /// Where the snapshot step put `<name>.db` and `<name>.json`.
    #[arg(long)]
    pub snapshots_dir: PathBuf,
    /// Where the result line goes.
    #[arg(long, default_value = "/dev/termination-log")]
    pub termination_log: PathBuf,
    /// The Secret the credentials come from, for messages only.
    #[arg(long, default_value = "")]
    pub credentials_secret: String,
    /// Largest object sent in one PUT (S3's limit; lower only to test multipart uploads).
    #[arg(long, hide = true, default_value_t = super::MAX_SINGLE_PUT)]
    pub single_put_max: u64,
    /// Part size of multipart uploads.
    #[arg(long, hide = true, default_value_t = super::PART_SIZE,
          value_parser = clap::value_parser!(u64).range(super::MIN_PART_SIZE..))]
    pub part_size: u64,
}

/// The credentials from the environment, or why there are none.
pub fn credentials(
    access_key: Option<String>,
    secret_key: Option<String>,
    secret: &str,
) -> Result<Credentials, String> {
    let missing = |key: &str| {
        format!(
            "the Secret {secret:?} (spec.etcd.backup.s3.credentialsSecret) does not exist or has no key {key}"
        )
    };
    let access_key = access_key
        .filter(|k| !k.is_empty())
        .ok_or_else(|| missing(ACCESS_KEY_ENV))?;
    let secret_key = secret_key
        .filter(|k| !k.is_empty())
        .ok_or_else(|| missing(SECRET_KEY_ENV))?;
    Ok(Credentials {
        access_key,
        secret_key,
    })
}

/// The snapshot step's result, when it is a success with a name and member.
fn snapshot_result(text: &str) -> Result<(Map<String, Value>, String, String), String> {
    let result: Map<String, Value> = serde_json::from_str(text.trim())
        .map_err(|e| format!("the snapshot step's result cannot be read ({e}): {text:?}"))?;
    let field = |name: &str| result.get(name).and_then(Value::as_str).map(str::to_string);
    match (field("result").as_deref(), field("name"), field("member")) {
        (Some("success"), Some(name), Some(member)) => Ok((result, name, member)),
        _ => Err(format!(
            "the snapshot step did not succeed: {}",
            text.trim()
        )),
    }
}

/// Runs the upload; the result line is also returned (and written to the termination log).
pub async fn run(args: &UploadArgs, credentials: Result<Credentials, String>) -> (bool, String) {
    let (ok, line) = match upload(args, credentials).await {
        Ok(line) => (true, line),
        Err((member, why)) => (false, super::failure_line(&member, &why)),
    };
    if let Err(e) = std::fs::write(&args.termination_log, format!("{line}\n")) {
        eprintln!("cannot write {}: {e}", args.termination_log.display());
    }
    (ok, line)
}

async fn upload(
    args: &UploadArgs,
    credentials: Result<Credentials, String>,
) -> Result<String, (String, String)> {
    let text = std::fs::read_to_string(&args.snapshot_result).map_err(|e| {
        let where_ = args.snapshot_result.display();
        (
            String::new(),
            format!("cannot read the snapshot step's result {where_}: {e}"),
        )
    })?;
    let (snapshot, name, member) = snapshot_result(&text).map_err(|e| (String::new(), e))?;
    let fail = |why: String| (member.clone(), why);
    let credentials = credentials.map_err(|why| {
        fail(format!(
            "snapshot {name} verified on the claim, not copied to the bucket: {why}"
        ))
    })?;
    let bucket =
        Bucket::new(&args.endpoint, &args.bucket, &args.region, credentials).map_err(&fail)?;
    let (db_key, json_key) = super::keys(&args.prefix, &name);
    let copy_url = bucket.url(&db_key);
    let not_copied = |why: String| {
        fail(format!(
            "snapshot {name} verified on the claim, but its copy to {copy_url} failed: {why}"
        ))
    };
    let db = args.snapshots_dir.join(format!("{name}.db"));
    let marker = read(&args.snapshots_dir.join(format!("{name}.json"))).map_err(&not_copied)?;
    (bucket
        .upload(&db_key, &db, args.single_put_max, args.part_size)
        .await)
        .map_err(&not_copied)?;
    // The marker last: a copy without it is not taken for a verified one.
    (bucket.put_bytes(&json_key, marker).await).map_err(&not_copied)?;
    eprintln!("copied {} to {copy_url}", db.display());
    let pruned = prune(&bucket, &args.prefix, &name, args.keep as usize)
        .await
        .map_err(|why| {
            fail(format!(
                "snapshot {name} copied to {copy_url}, but deleting copies beyond keep failed: {why}"
            ))
        })?;
    Ok(super::success_line(&snapshot, &copy_url, pruned))
}

fn read(path: &Path) -> Result<Bytes, String> {
    (std::fs::read(path).map(Bytes::from))
        .map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// Deletes the copies beyond `keep` ([`super::prune_choice`]); how many keys went.
async fn prune(bucket: &Bucket, prefix: &str, newest: &str, keep: usize) -> Result<usize, String> {
    let listed = bucket.list(prefix).await?;
    let chosen = super::prune_choice(&listed, prefix, newest, keep);
    for key in &chosen {
        bucket.delete(key).await?;
        eprintln!("deleted {}", bucket.url(key));
    }
    Ok(chosen.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_credentials_name_the_secret_and_key() {
        assert_eq!(
            credentials(None, Some("s".into()), "s3-keys"),
            Err("the Secret \"s3-keys\" (spec.etcd.backup.s3.credentialsSecret) does not exist or has no key AWS_ACCESS_KEY_ID".into())
        );
        assert_eq!(
            credentials(Some("a".into()), Some(String::new()), "s3-keys"),
            Err("the Secret \"s3-keys\" (spec.etcd.backup.s3.credentialsSecret) does not exist or has no key AWS_SECRET_ACCESS_KEY".into())
        );
        assert_eq!(
            credentials(Some("a".into()), Some("s".into()), "s3-keys"),
            Ok(Credentials {
                access_key: "a".into(),
                secret_key: "s".into()
            })
        );
    }

    #[test]
    fn only_a_successful_snapshot_is_copied() {
        let (_, name, member) = snapshot_result(
            r#"{"result":"success","name":"etcd-20261207T030000Z","member":"demo-etcd-1","size":1}"#,
        )
        .unwrap();
        assert_eq!(
            (name.as_str(), member.as_str()),
            ("etcd-20261207T030000Z", "demo-etcd-1")
        );
        assert_eq!(
            snapshot_result(r#"{"result":"failure","member":"m","reason":"r"}"#).unwrap_err(),
            r#"the snapshot step did not succeed: {"result":"failure","member":"m","reason":"r"}"#
        );
        assert!(
            snapshot_result("garbage")
                .unwrap_err()
                .starts_with("the snapshot step's result cannot be read")
        );
    }
}

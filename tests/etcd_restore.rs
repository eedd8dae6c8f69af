//! The etcd restore against real etcd (Debian's `etcd` and `/usr/bin/etcdctl` standing in for
//! the image's v3.4 etcdctl): snapshots taken and verified as the backup does (`snapshot save`,
//! then `snapshot status -w json` into `<name>.json`), the operator's own verify and restore
//! scripts (`desired::etcd_restore`, run on host paths), member 0 rebuilt and the others added
//! back through the operator's etcd client, and Curve's id counters advanced by it.

#[path = "support/etcd.rs"]
mod etcd_support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use curve_operator::desired::etcd_restore::{
    RestoreTarget, ScriptPaths, restore_script, verify_script,
};
use curve_operator::etcd::counters::{self, AdvanceProgress, CHUNK_COUNTER_KEY, INODE_COUNTER_KEY};
use curve_operator::etcd::{ChangeOutcome, ClusterKey, EtcdClients, EtcdObserver, MemberChange};
use etcd_client::{Client, Compare, CompareOp, Txn, TxnOp};
use etcd_support::{EtcdCluster, TempDir, etcd_binary, etcdctl_binary, free_port};

const SNAPSHOT: &str = "etcd-20260101T000000Z";

/// Curve's `EtcdIdGenerator` (src/mds/nameserver2/idgenerator/etcd_id_generator.cpp:31-77),
/// step for step: a bundle taken when the last one is used up (or on the first id), by reading
/// the key (absent: the initial value), then Curve's `CompareAndSwap`, which is two
/// transactions (thirdparties/etcdclient/etcdclient.go:392-413): a put if the key was never
/// created, then a put if the value is the one read.
struct CurveIdGenerator {
    key: &'static str,
    initial: u64,
    next: u64,
    bundle_end: u64,
}

impl CurveIdGenerator {
    const BUNDLE: u64 = 1000;

    fn new(key: &'static str, initial: u64) -> Self {
        CurveIdGenerator {
            key,
            initial,
            next: initial,
            bundle_end: initial,
        }
    }

    async fn gen_id(&mut self, client: &mut Client) -> u64 {
        if self.next > self.bundle_end || self.next == self.initial {
            let got = client.get(self.key, None).await.unwrap();
            let out = got
                .kvs()
                .first()
                .map(|kv| kv.value_str().unwrap().to_string());
            let alloc = out.as_deref().map_or(self.initial, |v| v.parse().unwrap());
            let target = (alloc + Self::BUNDLE).to_string();
            let out = out.unwrap_or_default();
            client
                .txn(
                    Txn::new()
                        .when([Compare::create_revision(self.key, CompareOp::Equal, 0)])
                        .and_then([TxnOp::put(self.key, target.clone(), None)]),
                )
                .await
                .unwrap();
            client
                .txn(
                    Txn::new()
                        .when([Compare::value(self.key, CompareOp::Equal, out)])
                        .and_then([TxnOp::put(self.key, target, None)]),
                )
                .await
                .unwrap();
            self.bundle_end = alloc + Self::BUNDLE;
            self.next = alloc + 1;
        }
        let id = self.next;
        self.next += 1;
        id
    }

    /// `n` ids; the largest.
    async fn take(&mut self, client: &mut Client, n: usize) -> u64 {
        let mut last = 0;
        for _ in 0..n {
            last = self.gen_id(client).await;
        }
        last
    }
}

/// The backup's way of taking a verified snapshot: `snapshot save`, then the `.json` of
/// `snapshot status -w json` with the member and the time added.
fn take_snapshot(etcd: &EtcdCluster, member: usize, backup: &Path) -> PathBuf {
    let dir = backup.join("snapshots");
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join(format!("{SNAPSHOT}.db"));
    let endpoint = etcd.members[member].endpoint();
    etcd.etcdctl(
        std::slice::from_ref(&endpoint),
        &["snapshot", "save", db.to_str().unwrap()],
    );
    let status = etcd.etcdctl(
        &[],
        &["snapshot", "status", db.to_str().unwrap(), "-w", "json"],
    );
    let mut json: serde_json::Value = serde_json::from_str(status.trim()).unwrap();
    json["member"] = etcd.members[member].name.clone().into();
    json["takenAt"] = "2026-01-01T00:00:00Z".into();
    std::fs::write(dir.join(format!("{SNAPSHOT}.json")), json.to_string()).unwrap();
    db
}

fn paths(dir: &Path) -> ScriptPaths {
    ScriptPaths {
        etcdctl: etcdctl_binary().display().to_string(),
        backup: dir.join("backup").display().to_string(),
        data: dir.join("data-0").display().to_string(),
        termination_log: dir.join("termination-log").display().to_string(),
    }
}

/// Runs a rendered script with `sh`, as the Job's container does; its exit and its termination
/// message.
fn run(script: &str, paths: &ScriptPaths) -> (bool, String) {
    let _ = std::fs::remove_file(&paths.termination_log);
    let out = Command::new("sh").arg("-c").arg(script).output().unwrap();
    let message = std::fs::read_to_string(&paths.termination_log).unwrap_or_default();
    (
        out.status.success(),
        format!(
            "{}\n{}",
            message.trim(),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// An etcd process on a data dir laid out as the operator's pods have it (`wal-dir` inside).
struct Member {
    name: String,
    ip: String,
    client_port: u16,
    peer_port: u16,
    data: PathBuf,
    child: Option<Child>,
}

impl Member {
    fn new(i: usize, dir: &Path) -> Member {
        let ip = format!("127.0.0.{}", 31 + i);
        Member {
            name: format!("etcd-{i}"),
            client_port: free_port(&ip),
            peer_port: free_port(&ip),
            data: dir.join(format!("data-{i}")),
            ip,
            child: None,
        }
    }

    fn peer_url(&self) -> String {
        format!("http://{}:{}", self.ip, self.peer_port)
    }

    fn endpoint(&self) -> String {
        format!("{}:{}", self.ip, self.client_port)
    }

    /// Starts it as the operator's etcd.conf does: `initial-cluster` and `existing` matter only
    /// to a member without data (one that joins).
    fn start(&mut self, initial_cluster: &str) {
        std::fs::create_dir_all(&self.data).unwrap();
        let client_url = format!("http://{}", self.endpoint());
        let log = std::fs::File::create(self.data.with_extension("log")).unwrap();
        let child = Command::new(etcd_binary())
            .args([
                format!("--name={}", self.name),
                format!("--data-dir={}", self.data.display()),
                format!("--wal-dir={}", self.data.join("wal").display()),
                format!("--listen-client-urls={client_url}"),
                format!("--advertise-client-urls={client_url}"),
                format!("--listen-peer-urls={}", self.peer_url()),
                format!("--initial-advertise-peer-urls={}", self.peer_url()),
                format!("--initial-cluster={initial_cluster}"),
                "--initial-cluster-state=existing".into(),
                "--strict-reconfig-check=true".into(),
                "--logger=zap".into(),
                "--log-outputs=stderr".into(),
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.data.with_extension("log")).unwrap_or_default()
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

async fn wait_serving(member: &Member) -> Client {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = async {
            let mut c = Client::connect([member.endpoint()], None).await.ok()?;
            c.get("readiness-probe", None).await.ok()?;
            Some(c)
        };
        if let Ok(Some(c)) = tokio::time::timeout(Duration::from_secs(2), ready).await {
            return c;
        }
        assert!(
            Instant::now() < deadline,
            "{} does not serve:\n{}",
            member.name,
            member.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A member joins the rebuilt cluster as the operator's membership growth adds it: a learner
/// through the operator's etcd client, its process started empty, then promoted once etcd
/// lets it.
async fn join(clients: &EtcdClients, key: &ClusterKey, members: &mut [Member], i: usize) {
    let endpoints: Vec<String> = members[..i].iter().map(Member::endpoint).collect();
    let add = MemberChange::AddLearner {
        peer_url: members[i].peer_url(),
    };
    // etcd refuses a change within 5 s of the last one: the operator asks again next pass.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match clients.change_members(key, &endpoints, &add).await {
            Ok(ChangeOutcome::Done) => break,
            Ok(ChangeOutcome::NotYet(_)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(500)).await
            }
            Err(e) if Instant::now() < deadline => {
                eprintln!("add {}: {e}", members[i].name);
                tokio::time::sleep(Duration::from_millis(500)).await
            }
            other => panic!("add {}: {other:?}", members[i].name),
        }
    }
    let initial: Vec<String> = members[..=i]
        .iter()
        .map(|m| format!("{}={}", m.name, m.peer_url()))
        .collect();
    // A learner serves no linearizable read: it is waited for by its promotion.
    members[i].start(&initial.join(","));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let list = clients.observe(key, &endpoints).await.members.unwrap();
        let learner = list
            .members
            .iter()
            .find(|m| m.peer_urls.contains(&members[i].peer_url()))
            .unwrap();
        if !learner.is_learner {
            return;
        }
        let promote = MemberChange::Promote { id: learner.id };
        // A request timing out on a busy machine is retried, as the operator's next pass does.
        match clients.change_members(key, &endpoints, &promote).await {
            Ok(_) => {}
            Err(e) if Instant::now() < deadline => eprintln!("promote {}: {e}", members[i].name),
            Err(e) => panic!("promote {}: {e}", members[i].name),
        }
        assert!(
            Instant::now() < deadline,
            "{} not promoted",
            members[i].name
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test]
async fn a_verified_snapshot_restored_into_a_fresh_three_member_cluster_has_its_keys_and_advanced_counters()
 {
    let dir = TempDir::new("restore");
    let paths = paths(dir.path());
    // The lost cluster: Curve's keys and ids handed out as its MDS would.
    let mut lost = EtcdCluster::start(3).await;
    let mut client = Client::connect(lost.endpoints(), None).await.unwrap();
    let mut inodes = CurveIdGenerator::new(INODE_COUNTER_KEY, counters::INODE_INITIAL);
    let mut chunks = CurveIdGenerator::new(CHUNK_COUNTER_KEY, counters::CHUNK_INITIAL);
    inodes.take(&mut client, 3).await;
    chunks.take(&mut client, 2 * 64).await;
    for (key, value) in [("0100000001volume1", "file"), ("1007", "cluster-id")] {
        client.put(key, value, None).await.unwrap();
    }
    take_snapshot(&lost, 1, &dir.path().join("backup"));
    let snapshot_revision = client
        .get("1007", None)
        .await
        .unwrap()
        .header()
        .unwrap()
        .revision();
    // After the snapshot: more volumes, more chunks (several bundles), then etcd is lost.
    let last_inode_after = inodes.take(&mut client, 1500).await;
    let last_chunk_after = chunks.take(&mut client, 40 * 64).await;
    client.put("0100000002after", "file", None).await.unwrap();
    for i in 0..3 {
        lost.stop(i);
    }
    drop(lost);

    // The verify Job's script, then the restore Job's, exactly as rendered.
    let (ok, message) = run(&verify_script(SNAPSHOT, &paths), &paths);
    assert!(ok, "{message}");
    assert!(
        message.starts_with(&format!(
            "snapshot {SNAPSHOT} verified: revision {snapshot_revision},"
        )),
        "{message}"
    );
    let mut members: Vec<Member> = (0..3).map(|i| Member::new(i, dir.path())).collect();
    std::fs::create_dir_all(&members[0].data).unwrap();
    std::fs::write(members[0].data.join("stale"), "the lost member's data").unwrap();
    let target = RestoreTarget {
        snapshot: SNAPSHOT.into(),
        member: members[0].name.clone(),
        peer_url: members[0].peer_url(),
        cluster_token: "restored-token".into(),
    };
    let started = Instant::now();
    let (ok, message) = run(&restore_script(&target, &paths), &paths);
    assert!(ok, "{message}");
    assert!(
        !members[0].data.join("stale").exists(),
        "the lost data is replaced"
    );
    assert!(
        members[0].data.join("wal").is_dir() && members[0].data.join("member/snap/db").is_file()
    );
    let initial = format!("{}={}", members[0].name, members[0].peer_url());
    members[0].start(&initial);
    let mut client = wait_serving(&members[0]).await;

    // The operator's counter advance, through its own etcd client.
    let clients = EtcdClients::new().0;
    let key = ClusterKey {
        namespace: "ns".into(),
        name: "demo".into(),
    };
    let one = vec![members[0].endpoint()];
    let reading = clients.read_counters(&key, &one).await.unwrap();
    assert!(reading.revision >= snapshot_revision);
    let planned = counters::plan(&reading).unwrap();
    assert_eq!(
        planned.inode.from,
        Some(1002),
        "the snapshot's value: one bundle after 2"
    );
    assert_eq!(planned.chunk.from, Some(1000));
    assert!(
        clients
            .advance_counters(&key, &one, &planned)
            .await
            .unwrap()
    );
    let after = clients.read_counters(&key, &one).await.unwrap();
    assert_eq!(counters::progress(&after, &planned), AdvanceProgress::Done);
    // A second send of the same advance is refused by its guard: nothing is advanced twice.
    assert!(
        !clients
            .advance_counters(&key, &one, &planned)
            .await
            .unwrap()
    );

    for i in 1..3 {
        join(&clients, &key, &mut members, i).await;
    }
    let recovered = started.elapsed();
    for member in &members {
        let mut c = wait_serving(member).await;
        let volume = c.get("0100000001volume1", None).await.unwrap();
        assert_eq!(
            volume.kvs()[0].value_str().unwrap(),
            "file",
            "{}",
            member.name
        );
        assert!(
            c.get("0100000002after", None)
                .await
                .unwrap()
                .kvs()
                .is_empty()
        );
    }
    let all: Vec<String> = members.iter().map(Member::endpoint).collect();
    let list = clients.observe(&key, &all).await.members.unwrap();
    assert_eq!((list.total, list.healthy), (3, 3));
    assert!(list.members.iter().all(|m| !m.is_learner));

    // A new MDS hands out ids above every id handed out after the snapshot.
    let mut inodes = CurveIdGenerator::new(INODE_COUNTER_KEY, counters::INODE_INITIAL);
    let mut chunks = CurveIdGenerator::new(CHUNK_COUNTER_KEY, counters::CHUNK_INITIAL);
    let first_inode = inodes.gen_id(&mut client).await;
    let first_chunk = chunks.gen_id(&mut client).await;
    assert!(
        first_inode > last_inode_after && first_chunk > last_chunk_after,
        "inode {first_inode} > {last_inode_after}, chunk {first_chunk} > {last_chunk_after}"
    );
    assert_eq!(first_chunk, 1000 + (1 << 40) + 1);
    println!(
        "restore: snapshot verified, member 0 rebuilt, counters advanced and 2 members rejoined in {recovered:?}"
    );
}

#[tokio::test]
async fn a_corrupted_or_unverified_snapshot_is_refused_and_the_data_dir_left_alone() {
    let dir = TempDir::new("restore-corrupt");
    let paths = paths(dir.path());
    let etcd = EtcdCluster::start(1).await;
    let mut client = Client::connect(etcd.endpoints(), None).await.unwrap();
    for i in 0..200 {
        client
            .put(format!("02{i:016}"), "x".repeat(100), None)
            .await
            .unwrap();
    }
    let db = take_snapshot(&etcd, 0, &dir.path().join("backup"));
    let data = PathBuf::from(&paths.data);
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("kept"), "x").unwrap();
    let target = RestoreTarget {
        snapshot: SNAPSHOT.into(),
        member: "etcd-0".into(),
        peer_url: "http://127.0.0.41:2380".into(),
        cluster_token: "t".into(),
    };

    // Bytes changed inside the database after it was verified.
    let original = std::fs::read(&db).unwrap();
    let mut bytes = original.clone();
    let middle = bytes.len() / 2;
    for b in &mut bytes[middle..middle + 64] {
        *b ^= 0x5a;
    }
    std::fs::write(&db, &bytes).unwrap();
    for script in [
        verify_script(SNAPSHOT, &paths),
        restore_script(&target, &paths),
    ] {
        let (ok, message) = run(&script, &paths);
        assert!(!ok, "a corrupted snapshot passed: {message}");
        println!("refused: {message}");
        assert!(
            message.starts_with(&format!("snapshot {SNAPSHOT}: ")),
            "{message}"
        );
        assert!(
            message.contains("so it is never used") || message.contains("refuses"),
            "{message}"
        );
    }
    let left: Vec<String> = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(
        left,
        vec!["kept".to_string()],
        "nothing restored, nothing removed"
    );

    // A database that reads well but is not the one verified: its hash differs from the
    // .json's (here the .json names another hash).
    std::fs::write(&db, &original).unwrap();
    let json_path = dir.path().join(format!("backup/snapshots/{SNAPSHOT}.json"));
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    let hash = json["hash"].as_u64().unwrap();
    json["hash"] = (hash ^ 1).into();
    std::fs::write(&json_path, json.to_string()).unwrap();
    let (ok, message) = run(&restore_script(&target, &paths), &paths);
    assert!(!ok);
    assert_eq!(
        message.lines().next().unwrap(),
        format!(
            "snapshot {SNAPSHOT}: hash is {hash} but {}/snapshots/{SNAPSHOT}.json recorded {}: the file changed after it was verified, so it is never used",
            paths.backup,
            hash ^ 1
        )
    );
    assert!(!data.join("member").exists());

    // A snapshot without its .json was never verified by the backup.
    std::fs::remove_file(dir.path().join(format!("backup/snapshots/{SNAPSHOT}.json"))).unwrap();
    let (ok, message) = run(&verify_script(SNAPSHOT, &paths), &paths);
    assert!(!ok);
    assert!(
        message.contains(".json is missing: the snapshot was never verified, so it is never used"),
        "{message}"
    );
}

//! How the pure steps grow with the cluster: `decide` and, separately, the status, the cluster
//! map and the whole desired object set, roll selection, Curve's health verdict, the inventory
//! and the retire decision, on synthetic clusters of 100, 1,000 and 12,000 ChunkServers
//! (`curve_operator::reconcile::synthetic`: brought up to Available by the real decisions, 5
//! etcd members, 5 MDS, every pod Ready, Curve healthy with 100 copysets per ChunkServer).
//!
//! Prints one row per step and size: p50, p99, and how much the p50 grew against the size
//! before (`×t`) beside how much the ChunkServers grew (`×n`): a step that grows as n log n
//! keeps `×t` near `×n`; a quadratic one near `×n²`. Then the bytes the largest cluster's
//! snapshot takes as the watch caches keep it. Exits 1 when `decide`'s p99 at the largest size
//! is 20 ms or more (the goal of issue 31).
//!
//! `decide` runs as the operator runs it: with the desired objects of the pass before kept
//! (reconcile/desired_memo.rs), reused while their inputs are unchanged. The rows marked
//! "cold memo" build them anew, as the first pass after a start or a change of the inputs does.
//!
//! Under `cargo test` (the suite builds and runs every target; cargo passes `--bench` only to
//! `cargo bench`) it measures the smallest size once as a smoke run and judges no goal: a debug
//! build's times say nothing of the goal.
//!
//! `CURVE_BENCH_SIZES=10x10,100x10` (servers×disks) measures other sizes.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use curve_operator::api::CurveClusterStatus;
use curve_operator::curve::CallError;
use curve_operator::curve::health::{Rules, health_status, verdict};
use curve_operator::curve::inventory::Inventory;
use curve_operator::desired::config::DaemonAddresses;
use curve_operator::desired::topology::{PoolProgress, cluster_map};
use curve_operator::desired::{self, Observed};
use curve_operator::names::Component;
use curve_operator::reconcile::decide::{decide, decide_reusing, existing_objects};
use curve_operator::reconcile::desired_memo::DesiredMemo;
use curve_operator::reconcile::health::view;
use curve_operator::reconcile::observe::chunkserver_servers;
use curve_operator::reconcile::retire::{self, RetireInput};
use curve_operator::reconcile::roll;
use curve_operator::reconcile::snapshot::{Caches, Snapshot};
use curve_operator::reconcile::status::compute_status;
use curve_operator::reconcile::synthetic::{self, Available, Size};
use curve_operator::reconcile::{blockers, expansion, leaders, observe, plan};
use curve_operator::validate::ValidatedCluster;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::core::PartialObjectMetaExt;
use kube::runtime::reflector::Lookup;
use kube::runtime::reflector::store::Writer;
use kube::runtime::watcher;

/// Counts the bytes live on the heap, to weigh a snapshot.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size, Ordering::Relaxed);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The heap bytes `make` leaves live (what it returns holds).
fn weigh<T>(make: impl FnOnce() -> T) -> (T, usize) {
    let before = LIVE.load(Ordering::Relaxed);
    let made = make();
    (made, LIVE.load(Ordering::Relaxed).saturating_sub(before))
}

const GOAL: Duration = Duration::from_millis(20);
/// Each step runs about this long per size (at least `MIN_RUNS` times).
const BUDGET: Duration = Duration::from_secs(2);
const MIN_RUNS: usize = 5;
const MAX_RUNS: usize = 200;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// min, p50 and p99 of `step`, run until the budget is spent. On a shared machine the
/// minimum is the closest to an idle machine's figure.
fn time<T>(mut step: impl FnMut() -> T) -> (Duration, Duration, Duration) {
    let first = Instant::now();
    black_box(step());
    let once = first.elapsed().max(Duration::from_micros(1));
    let runs = (BUDGET.as_nanos() / once.as_nanos()).clamp(MIN_RUNS as u128, MAX_RUNS as u128);
    let mut samples: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            black_box(step());
            start.elapsed()
        })
        .collect();
    samples.sort();
    (
        samples[0],
        percentile(&samples, 50.0),
        percentile(&samples, 99.0),
    )
}

/// The cluster with `spec.chunkservers.replicas` lowered by a tenth (at least one server):
/// the retire decision weighs every ChunkServer that leaves.
fn scaled_in(cluster: &ValidatedCluster) -> ValidatedCluster {
    let mut smaller = cluster.clone();
    let cs = &mut smaller.spec.chunkservers;
    cs.replicas = (cs.replicas - (cs.replicas / 10).max(1)).max(smaller.spec.logical_pool.zones);
    smaller
}

fn slot_replicas(size: Size) -> std::collections::BTreeMap<i32, i32> {
    (0..size.disks).map(|slot| (slot, size.servers)).collect()
}

struct Row {
    step: &'static str,
    chunkservers: i32,
    min: Duration,
    p50: Duration,
    p99: Duration,
}

fn measure(size: Size, rows: &mut Vec<Row>) -> Available {
    let built = Instant::now();
    let up = synthetic::available(size);
    let Available {
        cluster,
        snapshot,
        status,
        reading,
        passes,
    } = &up;
    let n = size.chunkservers();
    println!(
        "# {n} ChunkServers ({} servers × {} disks, {} etcd, {} MDS): {} pods, {} copysets; brought up in {passes} decisions, {:.1?}",
        size.servers,
        size.disks,
        size.etcd,
        size.mds,
        snapshot.pods.len(),
        reading.topology.as_ref().map_or(0, |t| t.copysets.len()),
        built.elapsed()
    );
    let only = std::env::var("CURVE_BENCH_STEPS").ok();
    let wanted = |step: &str| {
        only.as_deref()
            .is_none_or(|o| o.split(',').any(|w| step.starts_with(w)))
    };
    let mut row = |step: &'static str, (min, p50, p99): (Duration, Duration, Duration)| {
        rows.push(Row {
            step,
            chunkservers: n,
            min,
            p50,
            p99,
        })
    };
    // Runs and records a step, when `CURVE_BENCH_STEPS` (prefixes) asks for it.
    macro_rules! step {
        ($name:expr, $body:expr) => {
            if wanted($name) {
                row($name, time(|| $body));
            }
        };
    }
    let now = synthetic::now();
    // The read step takes the cluster's objects from the watch caches.
    let caches = filled_caches(snapshot);
    let (namespace, name) = (&cluster.namespace, &cluster.name);
    let zone_label = cluster.spec.placement.zone_label.as_deref();
    step!(
        "read (snapshot of the caches)",
        caches.snapshot(namespace, name, zone_label)
    );
    // The operator keeps each cluster's desired objects from one decision to the next, and
    // reuses them while their inputs are unchanged: the memo is warm, as after any pass.
    let mut memo = DesiredMemo::default();
    let steady = decide_reusing(&mut memo, cluster, snapshot, status, Some(1), now);
    assert!(steady.actions.is_empty(), "the synthetic cluster is steady");
    step!(
        "decide (steady)",
        decide_reusing(&mut memo, cluster, snapshot, status, Some(1), now)
    );
    step!(
        "decide (steady, cold memo)",
        decide(cluster, snapshot, status, Some(1), now)
    );

    // The larger parts of `decide`, each on its own (`CURVE_BENCH_STEPS=part`).
    let existing = existing_objects(snapshot);
    step!("part: existing objects", existing_objects(snapshot));
    step!("part: volumes (expansion)", {
        let mut safe = (*cluster).clone();
        expansion::plan(
            &mut safe,
            &existing,
            &snapshot.claims,
            &snapshot.storage_classes,
        )
    });
    step!(
        "part: roll tiers",
        roll::tiers(&snapshot.stateful_sets, &snapshot.pods)
    );
    let classes = Default::default();
    let around = blockers::Surroundings {
        claims: &snapshot.claims,
        classes: &classes,
        unready_nodes: &snapshot.unready_nodes,
    };
    step!("part: pod blockers", {
        blockers::blockers(&snapshot.pods, &around);
        blockers::missing_pods(&snapshot.stateful_sets, &snapshot.pods)
    });
    step!("part: pod readings", {
        observe::format_progress(&snapshot.pods);
        observe::ready_by_tier(&snapshot.pods);
        observe::chunkserver_servers(&snapshot.pods, &snapshot.node_zones)
    });
    step!(
        "part: plan (apply)",
        plan::plan(&steady.desired, &existing, plan::gates(true, true))
    );
    step!(
        "part: leaders token",
        leaders::chunkserver_pods_token(&snapshot.pods)
    );

    let mut rolling: Snapshot = snapshot.clone();
    synthetic::outdate(&mut rolling, Component::ChunkServer);
    let roll_decision = decide_reusing(&mut memo, cluster, &rolling, status, Some(1), now);
    assert!(
        !roll_decision.actions.is_empty(),
        "a ChunkServer roll replaces a server's pods"
    );
    step!(
        "decide (ChunkServer roll)",
        decide_reusing(&mut memo, cluster, &rolling, status, Some(1), now)
    );
    let smaller = scaled_in(cluster);
    step!(
        "decide (scale-in asked)",
        decide_reusing(&mut memo, &smaller, snapshot, status, Some(1), now)
    );
    step!(
        "decide (scale-in, cold memo)",
        decide(&smaller, snapshot, status, Some(1), now)
    );

    let previous = CurveClusterStatus::default();
    step!(
        "status",
        compute_status(&previous, &steady.observation, Some(1), now)
    );
    step!(
        "status (unchanged)",
        compute_status(status, &steady.observation, Some(1), now)
    );

    let record = status.record.clone().unwrap_or_default();
    let observed_servers = chunkserver_servers(&snapshot.pods, &snapshot.node_zones);
    step!(
        "cluster map",
        cluster_map(cluster, &observed_servers, &record.servers)
    );
    let observed = Observed {
        servers: observed_servers.clone(),
        known_servers: record.servers.clone(),
        pools: PoolProgress::from_record(&record),
        addresses: Some(DaemonAddresses {
            mds: record.mds_addresses.clone(),
            etcd: record.etcd_addresses.clone(),
        }),
        etcd: None,
    };
    step!("desired objects", desired::build(cluster, &observed));

    let health = view(
        snapshot.health.as_ref().expect("read"),
        &snapshot.pods,
        cluster.spec.mds.port,
        None,
    );
    let checks = roll::Checks {
        health: Some(&health),
        node_zones: &snapshot.node_zones,
        pool_created: true,
    };
    step!("roll selection", {
        let tiers = roll::tiers(&rolling.stateful_sets, &rolling.pods);
        roll::decide(cluster, &tiers, &roll_decision.observation, checks, now)
    });

    let rules = Rules {
        replicas: cluster.spec.logical_pool.replicas as usize,
        ..Rules::default()
    };
    step!("health verdict", {
        let health = verdict(reading, &rules);
        health_status(
            &health,
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now),
        )
    });
    // One server's ChunkServers stopped: their copysets are judged from the MDS's placement.
    let mut one_down = reading.clone();
    let server_ip = synthetic::node_ip(size.servers - 1);
    for (address, nodes) in &mut one_down.raft {
        if address
            .rsplit_once(':')
            .is_some_and(|(ip, _)| ip == server_ip)
        {
            *nodes = Err(CallError::Unreachable {
                endpoint: format!("{address}/raft_stat"),
                reason: "connect: Connection refused (os error 111)".into(),
            });
        }
    }
    step!("health verdict (a server down)", verdict(&one_down, &rules));
    let latest = snapshot.health.as_ref().expect("read");
    step!(
        "health view",
        view(latest, &snapshot.pods, cluster.spec.mds.port, None)
    );
    step!("inventory", Inventory::of_reading(reading));

    let inventory = health.inventory.as_deref();
    let retire_input = |cluster| RetireInput {
        cluster,
        slot_replicas: slot_replicas(size),
        pods: &snapshot.pods,
        previous: None,
        inventory,
        latest_inventory: inventory,
        unhealthy: None,
        usage_limit_percent: desired::config::pool_usage_limit_percent(cluster),
        now,
    };
    step!("retire (steady)", retire::plan(&retire_input(cluster)));
    let started = retire::plan(&retire_input(&smaller));
    assert!(started.record.is_some(), "a scale-in starts a retire");
    step!(
        "retire (scale-in start)",
        retire::plan(&retire_input(&smaller))
    );
    up
}

/// Fills a watch cache as a watch's first listing does, with objects as the cache keeps them.
fn fill<K>(writer: &mut Writer<K>, objects: impl IntoIterator<Item = K>)
where
    K: Lookup + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    writer.apply_watcher_event(&watcher::Event::Init);
    for object in objects {
        writer.apply_watcher_event(&watcher::Event::InitApply(object));
    }
    writer.apply_watcher_event(&watcher::Event::InitDone);
}

/// The watch caches holding the cluster as the watches would: its pods (their readings), sets,
/// Jobs, claims, ConfigMaps, Services and budgets (by metadata), and its nodes (slimmed, Ready).
fn filled_caches(snapshot: &Snapshot) -> Caches {
    let (caches, mut writers) = Caches::unshared();
    fill(
        &mut writers.pods,
        snapshot.pods.iter().map(|p| (**p).clone()),
    );
    fill(&mut writers.stateful_sets, snapshot.stateful_sets.clone());
    fill(&mut writers.jobs, snapshot.jobs.clone());
    fill(
        &mut writers.claims,
        snapshot.claims.iter().map(|c| (**c).clone()),
    );
    fill(
        &mut writers.config_maps,
        (snapshot.config_maps.iter().cloned()).map(|m| m.into_request_partial::<ConfigMap>()),
    );
    fill(
        &mut writers.services,
        (snapshot.services.iter().cloned()).map(|m| m.into_request_partial::<Service>()),
    );
    fill(
        &mut writers.budgets,
        (snapshot.budgets.iter().cloned()).map(|m| m.into_request_partial::<PodDisruptionBudget>()),
    );
    let nodes: std::collections::BTreeSet<&str> = snapshot
        .pods
        .iter()
        .filter_map(|p| p.node.as_deref())
        .collect();
    fill(
        &mut writers.nodes,
        nodes.into_iter().map(|name| {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": name, "labels": {"topology.kubernetes.io/zone": "z"}},
                "status": {"conditions": [{"type": "Ready", "status": "True"}]}
            }))
            .expect("a node")
        }),
    );
    caches
}

/// The process's resident memory (VmRSS), in bytes.
fn resident() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = (status.lines())
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok());
    kib.unwrap_or(0) * 1024
}

unsafe extern "C" {
    /// glibc: gives the heap's free memory back to the system.
    fn malloc_trim(pad: usize) -> i32;
}

fn sizes() -> Vec<Size> {
    let size = |servers, disks| Size {
        servers,
        disks,
        etcd: 5,
        mds: 5,
    };
    match std::env::var("CURVE_BENCH_SIZES") {
        Ok(list) => (list.split(','))
            .filter_map(|s| {
                let (servers, disks) = s.trim().split_once('x')?;
                Some(size(servers.parse().ok()?, disks.parse().ok()?))
            })
            .collect(),
        Err(_) if !benching() => vec![size(10, 10)],
        Err(_) => vec![size(10, 10), size(100, 10), size(1000, 12)],
    }
}

/// Run by `cargo bench`, not as a smoke run of the test suite.
fn benching() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// The machine and how busy it is: figures on a shared machine depend on both.
fn machine() -> String {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let load = read("/proc/loadavg");
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    format!(
        "{cores} cores, Linux {}, load average {}",
        read("/proc/sys/kernel/osrelease").trim(),
        load.join(" ")
    )
}

fn main() -> ExitCode {
    println!("# {}", machine());
    let mut rows = Vec::new();
    let mut largest = None;
    for size in sizes() {
        largest = Some(measure(size, &mut rows));
    }
    println!(
        "\n{:<30} {:>6} {:>10} {:>10} {:>10} {:>7} {:>5}",
        "step", "n", "min", "p50", "p99", "×t p50", "×n"
    );
    for (i, r) in rows.iter().enumerate() {
        let before = rows[..i].iter().rev().find(|b| b.step == r.step);
        let growth = before.map_or(String::new(), |b| {
            format!("{:.1}", r.p50.as_secs_f64() / b.p50.as_secs_f64())
        });
        let n_growth = before.map_or(String::new(), |b| {
            format!(
                "{:.1}",
                f64::from(r.chunkservers) / f64::from(b.chunkservers)
            )
        });
        println!(
            "{:<30} {:>6} {:>10.3?} {:>10.3?} {:>10.3?} {:>7} {:>5}",
            r.step, r.chunkservers, r.min, r.p50, r.p99, growth, n_growth
        );
    }
    println!("# at the end: {}", machine());
    let Some(largest) = largest else {
        return ExitCode::SUCCESS;
    };
    // What the watch caches hold of the cluster (pods as their readings, the rest slimmed),
    // what one read step adds to them, and what the health monitor keeps of its last round.
    let snapshot = &largest.snapshot;
    let cluster = &largest.cluster;
    let (caches, cached_bytes) = weigh(|| filled_caches(snapshot));
    let (pods_only, pod_bytes) = weigh(|| {
        let (caches, mut writers) = Caches::unshared();
        fill(
            &mut writers.pods,
            snapshot.pods.iter().map(|p| (**p).clone()),
        );
        caches
    });
    drop(pods_only);
    let (read, read_bytes) = weigh(|| {
        let zone_label = cluster.spec.placement.zone_label.as_deref();
        caches.snapshot(&cluster.namespace, &cluster.name, zone_label)
    });
    drop(read);
    // Its inventory copied too: a clone of the result shares it (an `Arc`), the monitor holds it.
    let (health, health_bytes) = weigh(|| {
        snapshot.health.clone().map(|mut latest| {
            latest.inventory = (latest.inventory).map(|i| std::sync::Arc::new((*i).clone()));
            latest
        })
    });
    let (reading, reading_bytes) = weigh(|| largest.reading.clone());
    drop((health, reading));
    // The desired objects the operator keeps for the cluster between decisions.
    let (memo, memo_bytes) = weigh(|| {
        let mut memo = DesiredMemo::default();
        let now = synthetic::now();
        decide_reusing(&mut memo, cluster, snapshot, &largest.status, Some(1), now);
        memo
    });
    let mib = |b: usize| b as f64 / (1 << 20) as f64;
    println!(
        "\nmemory at {} ChunkServers: the watch caches {:.1} MiB (pods {:.1} MiB, {} bytes per pod); one read step's snapshot beyond them {:.1} MiB; health monitor's latest result {:.1} MiB; one health round's reading {:.1} MiB; the desired objects kept between decisions {:.1} MiB",
        cluster.spec.chunkservers.replicas * cluster.spec.chunkservers.disks_per_node,
        mib(cached_bytes),
        mib(pod_bytes),
        pod_bytes / snapshot.pods.len().max(1),
        mib(read_bytes),
        mib(health_bytes),
        mib(reading_bytes),
        mib(memo_bytes)
    );
    // Resident memory with only the caches left: the synthetic cluster and its health round
    // dropped and the heap trimmed (the bench's binary pages are in it, as the operator's are).
    let decide_p99 = (rows.iter().rev())
        .find(|r| r.step == "decide (steady)")
        .map(|r| r.p99);
    drop(rows);
    drop(largest);
    // SAFETY: glibc's malloc_trim only releases free heap pages.
    unsafe { malloc_trim(0) };
    let holding_caches = resident();
    drop((caches, memo));
    unsafe { malloc_trim(0) };
    let without = resident();
    println!(
        "resident (VmRSS) holding the caches and the kept desired objects {:.1} MiB, without them {:.1} MiB",
        mib(holding_caches),
        mib(without)
    );
    match decide_p99 {
        Some(p99) if p99 >= GOAL && benching() => {
            println!("decide p99 {p99:.3?} at the largest size: the goal is < {GOAL:?}");
            ExitCode::FAILURE
        }
        _ => ExitCode::SUCCESS,
    }
}

//! Image emulation: every init container of every rendered pod and Job runs for real on the
//! Curve image's own files (`../shared/curve-image/v1.2.6/conf`, or `CURVE_IMAGE_CONF`), laid
//! out as the image has them, in a private mount namespace and chroot; then what each main
//! container would start is checked against what Curve v1.2.6 requires (its source is cited).
//! Only Curve's binaries are stand-ins (see emulation/README.md).
//!
//! The tests are named `emulated_*` and need root and the image files: `scripts/test.sh` runs
//! them with `--ignored` when the files are there, and says they were skipped when not.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::batch::v1::Job;
use serde_json::Value;

use curve_image_emulation::conf::{parse_curve_conf, parse_etcd_conf, placeholders};
use curve_image_emulation::{
    ContainerStatus, ImageFiles, Kubelet, PodFacts, PodRun, VolumeBacking,
};
use curve_operator::desired::common::START_SCRIPT_NAME;
use curve_operator::desired::start::{
    CHUNKSERVER_META_FILE, IDENTITY_FILE, MDS_RETRY_SECONDS, chunkserver_ready_script,
    empty_disk_refusal, json_field_function, parse_empty_disk_refusal,
};
use curve_operator::names::root_secret_name;
use curve_operator::render::{ExamplePlacement, objects, parse_cluster};
use curve_operator::validate::{ValidatedCluster, validate};

const EXAMPLES: [&str; 2] = [
    "examples/curvecluster.yaml",
    "examples/curvecluster-production.yaml",
];
/// The root password the Secret holds in these tests (the operator generates one like it).
const PASSWORD: &str = "Xq7vR2mK9pL4tW8zB3nC6dF1gH5jS0aE";
/// Size of each emulated ChunkServer data volume: a real ext4 file system.
const DATA_VOLUME_BYTES: u64 = 256 << 20;

fn repo(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn image() -> ImageFiles {
    ImageFiles::locate(env!("CARGO_MANIFEST_DIR")).unwrap_or_else(|e| panic!("image files: {e}"))
}

/// The example cluster, as render would show it: the cluster, its placement, its objects.
struct Rendered {
    cluster: ValidatedCluster,
    placement: ExamplePlacement,
    objects: Vec<Value>,
}

fn rendered(example: &str) -> Rendered {
    let cluster = parse_cluster(&std::fs::read_to_string(repo(example)).unwrap()).unwrap();
    let cluster = validate(&cluster, "curve").unwrap();
    let placement = ExamplePlacement::of(&cluster);
    let objects = objects(&cluster, &placement);
    Rendered {
        cluster,
        placement,
        objects,
    }
}

impl Rendered {
    fn of_kind<T: serde::de::DeserializeOwned>(&self, kind: &str) -> Vec<T> {
        self.objects
            .iter()
            .filter(|o| o["kind"] == kind)
            .map(|o| serde_json::from_value(o.clone()).unwrap())
            .collect()
    }

    /// The StatefulSet whose name ends with `suffix`, e.g. `-etcd`.
    fn stateful_set(&self, suffix: &str) -> StatefulSet {
        self.of_kind::<StatefulSet>("StatefulSet")
            .into_iter()
            .find(|s| set_name(s).ends_with(suffix))
            .unwrap_or_else(|| panic!("no StatefulSet named *{suffix}"))
    }

    /// The ConfigMaps as the pods see them, with the topology's progress as it is once the
    /// physical pool lists every server (the wait-for-pool init container then lets go).
    fn config_maps(&self) -> BTreeMap<String, BTreeMap<String, String>> {
        let mut maps: BTreeMap<String, BTreeMap<String, String>> = self
            .objects
            .iter()
            .filter(|o| o["kind"] == "ConfigMap")
            .map(|o| {
                (
                    o["metadata"]["name"].as_str().unwrap().to_string(),
                    serde_json::from_value(o["data"].clone()).unwrap(),
                )
            })
            .collect();
        let servers: String = self
            .placement
            .nodes
            .iter()
            .map(|n| format!("{}\n", n.ip))
            .collect();
        let topology = maps
            .get_mut(&format!("{}-topology", self.cluster.name))
            .unwrap();
        topology.insert("physical-pool-servers".into(), servers);
        maps
    }

    /// What the kubelet knows about ordinal `ordinal` of a StatefulSet (or a Job's pod).
    fn facts(&self, pod: &str, ordinal: usize) -> PodFacts {
        let node = &self.placement.nodes[ordinal];
        PodFacts {
            name: pod.to_string(),
            namespace: self.cluster.namespace.clone(),
            node_name: node.name.clone(),
            pod_ip: node.ip.clone(),
            host_ip: node.ip.clone(),
            config_maps: self.config_maps(),
            secrets: BTreeMap::from([(
                root_secret_name(&self.cluster.name),
                BTreeMap::from([("password".to_string(), PASSWORD.to_string())]),
            )]),
        }
    }
}

fn set_name(set: &StatefulSet) -> String {
    set.metadata.name.clone().unwrap()
}

/// Runs ordinal `ordinal` of a StatefulSet with its data volume on `backing`.
fn run_set_pod(rendered: &Rendered, set: &StatefulSet, ordinal: usize, backing: &Path) -> PodRun {
    run_set_pod_on(rendered, set, ordinal, backing, DATA_VOLUME_BYTES)
}

/// [`run_set_pod`] on a data volume of `size_bytes` (an existing smaller image is grown, as an
/// expanded volume).
fn run_set_pod_on(
    rendered: &Rendered,
    set: &StatefulSet,
    ordinal: usize,
    backing: &Path,
    size_bytes: u64,
) -> PodRun {
    let pod = format!("{}-{ordinal}", set_name(set));
    run_set_pod_with(set, &rendered.facts(&pod, ordinal), backing, size_bytes)
}

/// Runs a pod of the StatefulSet with these facts, its data claim on an ext4 image.
fn run_set_pod_with(
    set: &StatefulSet,
    facts: &PodFacts,
    backing: &Path,
    size_bytes: u64,
) -> PodRun {
    Kubelet::new(image())
        .run_stateful_set_pod(set, facts, &data_volume(backing, size_bytes))
        .unwrap()
}

/// The data claim of a StatefulSet's pod on an ext4 image at `backing` of `size_bytes`.
fn data_volume(backing: &Path, size_bytes: u64) -> BTreeMap<String, VolumeBacking> {
    BTreeMap::from([(
        "data".to_string(),
        VolumeBacking::Ext4 {
            image: backing.to_path_buf(),
            size_bytes,
        },
    )])
}

/// What the image's `/entrypoint.sh --role=R --args=A` execs: `--args` replaces the default
/// arguments and is word-split (docker/entrypoint.sh at v1.2.6).
struct Start {
    role: String,
    args: Vec<String>,
}

fn start_of(run: &PodRun, container: &str) -> Start {
    let mut line = run.command_line(container);
    // A start script (`sh -c SCRIPT curve-start /entrypoint.sh ARGS`) execs the entrypoint.
    if line.get(3).map(String::as_str) == Some(START_SCRIPT_NAME) {
        line.drain(..4);
    }
    assert_eq!(
        line.first().map(String::as_str),
        Some("/entrypoint.sh"),
        "{container}: {line:?}"
    );
    let role = line
        .iter()
        .find_map(|a| a.strip_prefix("--role="))
        .unwrap_or_else(|| panic!("{container}: no --role: {line:?}"));
    let args = line
        .iter()
        .find_map(|a| a.strip_prefix("--args="))
        .unwrap_or_else(|| panic!("{container}: no --args: {line:?}"));
    Start {
        role: role.to_string(),
        args: args.split_whitespace().map(String::from).collect(),
    }
}

impl Start {
    fn flag(&self, name: &str) -> Option<&str> {
        self.args
            .iter()
            .find_map(|a| a.strip_prefix(&format!("{name}=")))
    }
}

/// Reads a merged Curve config as the container sees it; checks it holds every key of the
/// image's default file and no placeholder.
fn merged_curve_conf(
    run: &PodRun,
    container: &str,
    path: &str,
    default_file: &str,
) -> BTreeMap<String, String> {
    let text = run
        .read(container, path)
        .unwrap_or_else(|e| panic!("{container} cannot read {path}: {e}\n{run}"));
    let default = std::fs::read_to_string(image().conf_dir().join(default_file)).unwrap();
    let parse = if default_file == "etcd.conf" {
        parse_etcd_conf
    } else {
        parse_curve_conf
    };
    let merged = parse(&text);
    let missing: Vec<String> = parse(&default)
        .into_keys()
        .filter(|k| !merged.contains_key(k))
        .collect();
    assert!(
        missing.is_empty(),
        "{container}: {path} lacks keys of the image's {default_file}: {missing:?}"
    );
    assert_eq!(
        placeholders(&text),
        Vec::<(String, String)>::new(),
        "{container}: {path} keeps placeholders"
    );
    merged
}

/// `ip:port`, as Curve's `butil::str2endpoint` takes it (no host names).
fn is_ip_endpoint(address: &str) -> bool {
    address.rsplit_once(':').is_some_and(|(ip, port)| {
        ip.parse::<std::net::Ipv4Addr>().is_ok() && port.parse::<u16>().is_ok()
    })
}

/// The flags Curve v1.2.6's ChunkServer aborts without (src/chunkserver/chunkserver.cpp,
/// `LoadConfigFromCmdline`: LOG(FATAL) "... must be set when run chunkserver in command").
const CHUNKSERVER_REQUIRED: [&str; 11] = [
    "-chunkServerIp",
    "-chunkServerPort",
    "-chunkServerStoreUri",
    "-chunkServerMetaUri",
    "-copySetUri",
    "-raftSnapshotUri",
    "-raftLogUri",
    "-recycleUri",
    "-chunkFilePoolDir",
    "-chunkFilePoolMetaPath",
    "-walFilePoolDir",
];

/// Every flag the ChunkServer binary of v1.2.6 defines that the operator may pass: its own
/// (chunkserver.cpp), braft's at the commit Curve pins (e255c0e: raft_sync, raft_sync_meta in
/// storage.cpp, raft_sync_segments and raft_max_segment_size in log.cpp, fsync.cpp,
/// snapshot_throttle.cpp), brpc's and glog's (`max_log_size`: declared in glog's logging.h at
/// the commit Curve pins, thirdparties/glog/glog.patch). gflags stops the daemon on any other.
const CHUNKSERVER_FLAGS: [&str; 27] = [
    "-conf",
    "-chunkServerIp",
    "-enableExternalServer",
    "-chunkServerExternalIp",
    "-chunkServerPort",
    "-chunkServerStoreUri",
    "-chunkServerMetaUri",
    "-copySetUri",
    "-raftSnapshotUri",
    "-raftLogUri",
    "-recycleUri",
    "-chunkFilePoolDir",
    "-chunkFilePoolMetaPath",
    "-walFilePoolDir",
    "-walFilePoolMetaPath",
    "-mdsListenAddr",
    "-log_dir",
    "-raft_sync",
    "-raft_sync_segments",
    "-raft_sync_meta",
    "-raft_use_fsync_rather_than_fdatasync",
    "-raft_max_segment_size",
    "-raft_max_install_snapshot_tasks_num",
    "-bthread_concurrency",
    "-graceful_quit_on_sigterm",
    "-stderrthreshold",
    "-max_log_size",
];

#[test]
#[ignore = "image emulation: needs root and the image files; scripts/test.sh runs it"]
fn emulated_etcd_pods_start_with_a_complete_config_of_their_own() {
    for example in EXAMPLES {
        let rendered = rendered(example);
        let set = rendered.stateful_set("-etcd");
        let dir = tempfile::tempdir().unwrap();
        let run = run_set_pod(&rendered, &set, 1, &dir.path().join("etcd.img"));
        assert!(run.init_succeeded(), "{example}: {run}");
        let start = start_of(&run, "etcd");
        assert_eq!(start.role, "etcd");
        let path = start
            .flag("--config-file")
            .expect("etcd gets --config-file");
        let conf = merged_curve_conf(&run, "etcd", path, "etcd.conf");
        let pod = format!("{}-1", set_name(&set));
        assert_eq!(
            conf["name"], pod,
            "{example}: the member is named after its pod"
        );
        assert_eq!(
            conf["listen-client-urls"],
            format!(
                "http://192.0.2.2:{}",
                rendered.cluster.spec.etcd.client_port
            )
        );
        assert!(
            conf["initial-cluster"].contains(&format!("{pod}=http://{pod}.")),
            "{example}: {}",
            conf["initial-cluster"]
        );
        assert_eq!(
            conf["data-dir"], "/curvebs/etcd/data",
            "{example}: on the data volume"
        );
        assert!(
            !run.env("config").contains_key("CURVE_ROOT_PASSWORD"),
            "etcd never sees the root password"
        );
    }
}

/// The etcd pod's data check on the image's own shell: a member with no data starts while the
/// cluster is new, or when it is the member joining; once the cluster exists, an empty member
/// is refused with the message the operator looks for (its data was lost).
#[test]
#[ignore = "image emulation: needs root and the image files; scripts/test.sh runs it"]
fn emulated_etcd_data_check_refuses_an_empty_member_of_an_existing_cluster() {
    let rendered = rendered(EXAMPLES[0]);
    let set = rendered.stateful_set("-etcd");
    let pod = format!("{}-1", set_name(&set));
    let members = format!("{}-members", set_name(&set));
    let run_with = |state: &str, joining: &str| {
        let dir = tempfile::tempdir().unwrap();
        let mut facts = rendered.facts(&pod, 1);
        let data = facts
            .config_maps
            .get_mut(&members)
            .expect("the membership ConfigMap");
        data.insert("initial-cluster-state".into(), state.into());
        data.insert("joining".into(), joining.into());
        run_set_pod_with(
            &set,
            &facts,
            &dir.path().join("etcd.img"),
            DATA_VOLUME_BYTES,
        )
    };
    assert!(run_with("new", "").init_succeeded(), "bootstrap");
    let joining = run_with("existing", &pod);
    assert!(joining.init_succeeded(), "the member joining: {joining}");
    let conf = joining
        .read("etcd", "/curvebs/etcd/conf/etcd.conf")
        .unwrap();
    assert!(conf.contains("initial-cluster-state: existing\n"), "{conf}");
    let lost = run_with("existing", "");
    assert!(
        !lost.init_succeeded(),
        "an empty member of an existing cluster"
    );
    let check = lost.failed_init_container().expect("the data check failed");
    assert_eq!(check.name, "data-check");
    assert!(
        lost.stderr("data-check").starts_with(&format!(
            "{} in /curvebs/etcd/data for member {pod}",
            curve_operator::desired::etcd::DATA_LOST_MARKER
        )),
        "{}",
        lost.stderr("data-check")
    );
}

#[test]
#[ignore = "image emulation: needs root and the image files; scripts/test.sh runs it"]
fn emulated_mds_pods_listen_on_their_ip_and_carry_the_root_password() {
    for example in EXAMPLES {
        let rendered = rendered(example);
        let set = rendered.stateful_set("-mds");
        let dir = tempfile::tempdir().unwrap();
        let run = run_set_pod(&rendered, &set, 2, &dir.path().join("mds.img"));
        assert!(run.init_succeeded(), "{example}: {run}");
        let start = start_of(&run, "mds");
        assert_eq!(start.role, "mds");
        let path = start.flag("-confPath").expect("the MDS gets -confPath");
        let conf = merged_curve_conf(&run, "mds", path, "mds.conf");
        let mds = &rendered.cluster.spec.mds;
        assert_eq!(
            conf["mds.listen.addr"],
            format!("192.0.2.3:{}", mds.port),
            "{example}: the election value is the pod's IP"
        );
        assert_eq!(conf["mds.dummy.listen.port"], mds.dummy_port.to_string());
        assert_eq!(conf["mds.auth.rootUserName"], "root");
        assert_eq!(
            conf["mds.auth.rootPassword"], PASSWORD,
            "{example}: the Secret's password, not the image's"
        );
        assert_eq!(
            conf["mds.etcd.endpoint"].split(',').count(),
            rendered.cluster.spec.etcd.replicas as usize
        );
        assert_eq!(
            run.env("mds").get("LD_PRELOAD").map(String::as_str),
            Some("/usr/local/lib/libjemalloc.so")
        );
        assert!(
            !run.env("mds").contains_key("CURVE_ROOT_PASSWORD"),
            "only the config init container gets the password"
        );
    }
}

#[test]
#[ignore = "image emulation: needs root and the image files; scripts/test.sh runs it"]
fn emulated_chunkservers_format_once_and_start_with_every_file_they_read() {
    for example in EXAMPLES {
        let rendered = rendered(example);
        let cs = &rendered.cluster.spec.chunkservers;
        for set in rendered
            .of_kind::<StatefulSet>("StatefulSet")
            .into_iter()
            .filter(|s| set_name(s).contains("-chunkserver-"))
        {
            let slot: i32 = set_name(&set).rsplit('-').next().unwrap().parse().unwrap();
            let dir = tempfile::tempdir().unwrap();
            let volume = dir.path().join("data.img");
            let run = run_set_pod(&rendered, &set, 0, &volume);
            assert!(run.init_succeeded(), "{example} slot {slot}: {run}");
            let format = run.invocations_of("curve_format");
            assert_eq!(format.len(), 1, "{run}");
            assert!(
                format[0].args().iter().any(|a| a == "-undefok=blockSize"),
                "{:?}",
                format[0].args()
            );
            assert!(
                run.exists(
                    "chunkserver",
                    "/curvebs/chunkserver/data/chunkfilepool.meta"
                ),
                "{run}"
            );

            let start = start_of(&run, "chunkserver");
            assert_eq!(start.role, "chunkserver");
            for flag in CHUNKSERVER_REQUIRED {
                assert!(
                    start.flag(flag).is_some_and(|v| !v.is_empty()),
                    "{example}: the ChunkServer aborts without {flag}"
                );
            }
            let unknown: Vec<&String> = start
                .args
                .iter()
                .filter(|a| !CHUNKSERVER_FLAGS.contains(&a.split('=').next().unwrap()))
                .collect();
            assert!(
                unknown.is_empty(),
                "{example}: flags v1.2.6's ChunkServer does not define: {unknown:?}"
            );
            let port = cs.port + slot;
            assert_eq!(start.flag("-chunkServerIp"), Some("192.0.2.1"));
            assert_eq!(
                start.flag("-chunkServerPort"),
                Some(port.to_string().as_str())
            );
            assert!(
                start
                    .flag("-mdsListenAddr")
                    .unwrap()
                    .split(',')
                    .all(is_ip_endpoint),
                "{:?}",
                start.flag("-mdsListenAddr")
            );

            let conf = merged_curve_conf(
                &run,
                "chunkserver",
                start.flag("-conf").unwrap(),
                "chunkserver.conf",
            );
            assert_eq!(
                (conf["global.ip"].as_str(), conf["global.port"].as_str()),
                ("192.0.2.1", port.to_string().as_str())
            );
            assert!(
                conf["mds.listen.addr"].split(',').all(is_ip_endpoint),
                "{}",
                conf["mds.listen.addr"]
            );
            assert_eq!(
                (
                    conf["curve.root_username"].as_str(),
                    conf["curve.root_password"].as_str()
                ),
                ("root", PASSWORD)
            );
            // The ChunkServer opens both at start and aborts when either is missing.
            let client = merged_curve_conf(
                &run,
                "chunkserver",
                &conf["curve.config_path"],
                "cs_client.conf",
            );
            assert_eq!(client["mds.listen.addr"], conf["mds.listen.addr"]);
            merged_curve_conf(&run, "chunkserver", &conf["s3.config_path"], "s3.conf");

            // A restart (same volume): the pool is kept, curve_format is not run again.
            drop(run);
            let again = run_set_pod(&rendered, &set, 0, &volume);
            assert!(again.init_succeeded(), "{again}");
            assert!(
                again.invocations_of("curve_format").is_empty(),
                "formatted twice: {again}"
            );
            assert!(
                again
                    .stdout("format")
                    .contains("chunk file pool present: not formatting"),
                "{again}"
            );
        }
    }
}

#[test]
#[ignore = "image emulation: needs root and the image files; scripts/test.sh runs it"]
fn emulated_format_fails_loudly_when_the_volume_cannot_hold_the_pool() {
    let mut rendered = rendered(EXAMPLES[0]);
    // A fresh ext4 volume keeps 5% for root: 99% can never be allocated.
    rendered.cluster.spec.chunkservers.format_percent = 99;
    rendered.objects = objects(&rendered.cluster, &rendered.placement);
    let set = rendered.stateful_set("-chunkserver-0");
    let dir = tempfile::tempdir().unwrap();
    let run = run_set_pod(&rendered, &set, 0, &dir.path().join("data.img"));
    assert_eq!(
        run.failed_init_container().map(|c| c.name.as_str()),
        Some("format"),
        "{run}"
    );
    assert_eq!(*run.status("format"), ContainerStatus::Exited(1));
    assert!(
        run.stderr("format")
            .contains("spec.chunkservers.formatPercent asks for 99%"),
        "{run}"
    );
    assert_eq!(*run.status("chunkserver"), ContainerStatus::NotRun);
}

/// Volume expansion: a ChunkServer restarted on its grown volume adds the new space to its
/// chunk file pool (curve_format appends after the highest file), without touching the pool's
/// own meta file; a restart without new space runs nothing.
#[test]
#[ignore = "image emulation: needs root and the image files; scripts/test.sh runs it"]
fn emulated_format_adds_the_space_of_a_grown_volume_to_the_pool() {
    let rendered = rendered(EXAMPLES[0]);
    let set = rendered.stateful_set("-chunkserver-0");
    let meta = "/curvebs/chunkserver/data/chunkfilepool.meta";
    let dir = tempfile::tempdir().unwrap();
    let volume = dir.path().join("data.img");
    let first = run_set_pod(&rendered, &set, 0, &volume);
    assert!(first.init_succeeded(), "{first}");
    let formatted = first.read("chunkserver", meta).unwrap();
    drop(first);

    let grown = run_set_pod_on(&rendered, &set, 0, &volume, 2 * DATA_VOLUME_BYTES);
    assert!(grown.init_succeeded(), "{grown}");
    let calls = grown.invocations_of("curve_format");
    assert_eq!(calls.len(), 1, "{grown}");
    let args = calls[0].args();
    let percent: u32 = (args.iter())
        .find_map(|a| a.strip_prefix("-allocatePercent="))
        .unwrap()
        .parse()
        .unwrap();
    // Half the grown volume is new; formatPercent (90) leaves 10% of it free.
    assert!((35..=50).contains(&percent), "{args:?}");
    assert!(
        args.iter()
            .any(|a| a == "-filePoolMetaPath=/curvebs/chunkserver/data/chunkfilepool.growth.meta"),
        "{args:?}"
    );
    // A growth skips the zero-fill (issue 28, item 7): the files are fallocated only.
    assert!(args.iter().any(|a| a == "-needWriteZero=false"), "{args:?}");
    assert!(
        grown
            .stdout("format")
            .contains(&format!("adding {percent}% of it to the chunk file pool")),
        "{grown}"
    );
    assert_eq!(
        grown.read("chunkserver", meta).unwrap(),
        formatted,
        "the pool's meta file is kept"
    );
    assert!(!grown.exists(
        "chunkserver",
        "/curvebs/chunkserver/data/chunkfilepool.growth.meta"
    ));
    drop(grown);

    let again = run_set_pod_on(&rendered, &set, 0, &volume, 2 * DATA_VOLUME_BYTES);
    assert!(again.init_succeeded(), "{again}");
    assert!(again.invocations_of("curve_format").is_empty(), "{again}");
}

#[test]
#[ignore = "image emulation: needs root and the image files; scripts/test.sh runs it"]
fn emulated_chunkservers_wait_until_the_physical_pool_lists_them() {
    let rendered = rendered(EXAMPLES[0]);
    let set = rendered.stateful_set("-chunkserver-0");
    let mut facts = rendered.facts(&format!("{}-0", set_name(&set)), 0);
    facts
        .config_maps
        .get_mut(&format!("{}-topology", rendered.cluster.name))
        .unwrap()
        .insert("physical-pool-servers".into(), String::new());
    let dir = tempfile::tempdir().unwrap();
    let volumes = data_volume(&dir.path().join("data.img"), DATA_VOLUME_BYTES);
    let run = Kubelet::new(image())
        .init_timeout(std::time::Duration::from_secs(3))
        .run_stateful_set_pod(&set, &facts, &volumes)
        .unwrap();
    assert!(
        matches!(run.status("wait-for-pool"), ContainerStatus::TimedOut(_)),
        "{run}"
    );
    assert!(
        run.stdout("wait-for-pool")
            .contains("waiting until the physical pool lists 192.0.2.1"),
        "{run}"
    );
}

#[test]
#[ignore = "image emulation: needs root and the image files; scripts/test.sh runs it"]
fn emulated_topology_jobs_run_curves_tools_with_working_credentials() {
    for example in EXAMPLES {
        let rendered = rendered(example);
        let cs = &rendered.cluster.spec.chunkservers;
        let expected = (cs.replicas * cs.disks_per_node) as u32;
        let jobs = rendered.of_kind::<Job>("Job");
        assert_eq!(jobs.len(), 3, "{example}");
        let topology_map = format!("{}-topology", rendered.cluster.name);
        for job in &jobs {
            let name = job.metadata.name.clone().unwrap();
            let kubelet = Kubelet::new(image())
                .run_main_containers(true)
                .chunkservers(expected, expected);
            let run = kubelet
                .run_job_pod(
                    job,
                    &rendered.facts(&format!("{name}-x"), 0),
                    &BTreeMap::new(),
                )
                .unwrap();
            let step = job
                .spec
                .as_ref()
                .unwrap()
                .template
                .spec
                .as_ref()
                .unwrap()
                .containers[0]
                .name
                .clone();
            assert_eq!(
                *run.status(&step),
                ContainerStatus::Exited(0),
                "{example} {name}: {run}"
            );
            let tools = merged_curve_conf(&run, &step, "/etc/curve/tools.conf", "tools.conf");
            assert_eq!(
                (
                    tools["rootUserName"].as_str(),
                    tools["rootUserPassword"].as_str()
                ),
                ("root", PASSWORD)
            );
            assert!(
                tools["mdsAddr"].split(',').all(is_ip_endpoint),
                "{}",
                tools["mdsAddr"]
            );
            assert!(
                tools["etcdAddr"].split(',').all(is_ip_endpoint),
                "{}",
                tools["etcdAddr"]
            );
            let called: BTreeSet<String> =
                run.invocations().iter().map(|i| i.binary.clone()).collect();
            match step.as_str() {
                "physical-pool" | "logical-pool" => {
                    let tool = run.invocations_of("curvebs-tool");
                    assert_eq!(tool.len(), 1, "{called:?}");
                    assert!(
                        tool[0]
                            .args()
                            .iter()
                            .any(|a| a == &format!("-op=create_{}", step.replace('-', ""))),
                        "{:?}",
                        tool[0].args()
                    );
                    // The map the tool reads is the topology ConfigMap's, as a file.
                    let path = (tool[0].args().iter())
                        .find_map(|a| a.strip_prefix("-cluster_map="))
                        .unwrap()
                        .to_string();
                    let topology = &rendered.config_maps()[&topology_map];
                    assert_eq!(
                        run.read(&step, &path).unwrap(),
                        topology["topology.json"],
                        "{example} {name}"
                    );
                }
                _ => assert_eq!(run.invocations_of("curve_ops_tool").len(), 1, "{called:?}"),
            }
        }
        // A physical-pool Job whose map was replaced by a newer one (another servers hash)
        // fails, saying so, before calling the tool: the newer map's Job does the work.
        let physical = (jobs.iter())
            .find(|j| {
                j.metadata
                    .name
                    .as_ref()
                    .unwrap()
                    .contains("-physical-pool-")
            })
            .unwrap();
        let mut facts = rendered.facts("physical-pool-x", 0);
        let topology = facts.config_maps.get_mut(&topology_map).unwrap();
        topology.insert("servers-hash".into(), "0000beef".into());
        let run = Kubelet::new(image())
            .run_main_containers(true)
            .run_job_pod(physical, &facts, &BTreeMap::new())
            .unwrap();
        assert_eq!(
            *run.status("physical-pool"),
            ContainerStatus::Exited(1),
            "{run}"
        );
        assert!(
            run.termination_message("physical-pool")
                .contains("the mounted cluster map has servers hash 0000beef"),
            "{run}"
        );
        assert!(run.invocations_of("curvebs-tool").is_empty(), "{run}");
        // The online check fails (and the Job retries) while a ChunkServer is not online.
        let online = jobs
            .iter()
            .find(|j| {
                j.metadata
                    .name
                    .as_ref()
                    .unwrap()
                    .contains("-chunkservers-online-")
            })
            .unwrap();
        let run = Kubelet::new(image())
            .run_main_containers(true)
            .chunkservers(expected, expected - 1)
            .run_job_pod(online, &rendered.facts("online-x", 0), &BTreeMap::new())
            .unwrap();
        assert_eq!(
            *run.status("chunkservers-online"),
            ContainerStatus::Exited(1),
            "{run}"
        );
    }
}

#[test]
#[ignore = "image emulation: needs root and the image files; scripts/test.sh runs it"]
fn emulated_pods_do_not_start_without_the_root_secret() {
    let rendered = rendered(EXAMPLES[0]);
    let set = rendered.stateful_set("-mds");
    let mut facts = rendered.facts("demo-mds-0", 0);
    facts.secrets.clear();
    let run = Kubelet::new(image())
        .run_stateful_set_pod(&set, &facts, &BTreeMap::new())
        .unwrap();
    assert!(
        matches!(run.status("config"), ContainerStatus::FailedToStart(why) if why.contains("CreateContainerConfigError")),
        "{run}"
    );
}

/// The set with its daemon started under `prlimit --nofile=SOFT:HARD`, as a node whose
/// container runtime gives those limits.
fn under_open_files_limits(set: &StatefulSet, soft: u64, hard: u64) -> StatefulSet {
    let mut set = set.clone();
    let pod = set.spec.as_mut().unwrap().template.spec.as_mut().unwrap();
    let command = pod.containers[0].command.as_mut().unwrap();
    let mut wrapped = vec![
        "prlimit".to_string(),
        format!("--nofile={soft}:{hard}"),
        "--".to_string(),
    ];
    wrapped.append(command);
    *command = wrapped;
    set
}

/// The MDS set with its start script checking two free ports instead of the spec's 6700 and
/// 7700: the emulation shares this machine's sockets, where another test (or an e2e stand-in)
/// may hold those, and the dummy port collides with a listener on any address.
fn with_free_mds_ports(set: &StatefulSet) -> StatefulSet {
    let mut set = set.clone();
    let pod = set.spec.as_mut().unwrap().template.spec.as_mut().unwrap();
    let script = (pod.containers[0].command.as_mut().unwrap().iter_mut())
        .find(|word| word.contains("port_taken 6700 "))
        .expect("the MDS's start script checks its ports");
    for spec_port in ["6700", "7700"] {
        let free = TcpListener::bind("0.0.0.0:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let check = format!("port_taken {spec_port} ");
        assert!(script.contains(&check), "{script}");
        *script = script.replace(&check, &format!("port_taken {free} "));
    }
    set
}

/// Runs the pod's main container too (a daemon's start script), its data claim on `volume`.
fn start_chunkserver(set: &StatefulSet, facts: &PodFacts, volume: &Path) -> PodRun {
    Kubelet::new(image())
        .run_main_containers(true)
        .run_stateful_set_pod(set, facts, &data_volume(volume, DATA_VOLUME_BYTES))
        .unwrap()
}

/// The ChunkServer set asking these MDS addresses (`MDS_ADDRESSES`, also its `-mdsListenAddr`)
/// instead of the example placement's, where nothing answers here.
fn with_mds(set: &StatefulSet, addresses: &[String]) -> StatefulSet {
    let mut set = set.clone();
    let pod = set.spec.as_mut().unwrap().template.spec.as_mut().unwrap();
    let env = pod.containers[0].env.as_mut().unwrap();
    env.iter_mut()
        .find(|e| e.name == "MDS_ADDRESSES")
        .expect("the ChunkServer container names its MDS")
        .value = Some(addresses.join(","));
    set
}

#[test]
#[ignore = "image emulation: needs root and the image files; scripts/test.sh runs it"]
fn emulated_chunkserver_start_raises_its_open_files_and_keeps_its_node() {
    // The most this process may grant (raising a hard limit needs CAP_SYS_RESOURCE).
    let host_hard: u64 = String::from_utf8(
        std::process::Command::new("sh")
            .args(["-c", "ulimit -H -n"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .parse()
    .unwrap_or(1 << 20);
    let rendered = rendered(EXAMPLES[0]);
    // An MDS that lists no ChunkServer: the empty disk registers as a new one.
    let mds = mds_stand_in(None);
    let set = with_mds(
        &under_open_files_limits(&rendered.stateful_set("-chunkserver-0"), 1024, host_hard),
        &[mds.address()],
    );
    let dir = tempfile::tempdir().unwrap();
    let volume = dir.path().join("data.img");
    let pod = format!("{}-0", set_name(&set));
    let facts = rendered.facts(&pod, 0);
    let run = start_chunkserver(&set, &facts, &volume);
    assert_eq!(
        run.read("chunkserver", IDENTITY_FILE).unwrap(),
        format!("{} {}\n", facts.node_name, facts.pod_ip),
        "{run}"
    );
    // One per pool file the volume can hold (256 MiB: about 15) plus 65536.
    let output = format!("{}{}", run.stdout("chunkserver"), run.stderr("chunkserver"));
    let need: u64 = output
        .split("ChunkServer needs ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{run}"));
    assert!((65536 + 10..=65536 + 16).contains(&need), "{run}");
    if host_hard >= need {
        // The soft limit rises from 1024 to the need, and the daemon starts.
        assert!(run.status("chunkserver").succeeded(), "{run}");
        assert!(
            output.contains(&format!(
                "open files: soft limit {need}, hard limit {host_hard}, ChunkServer needs {need}"
            )),
            "{run}"
        );
        assert_eq!(start_of(&run, "chunkserver").role, "chunkserver");
    } else {
        // This machine's own limit is below a ChunkServer's need: the start says so.
        assert_eq!(
            *run.status("chunkserver"),
            ContainerStatus::Exited(1),
            "{run}"
        );
        assert!(
            output.contains(&format!("the open files hard limit is {host_hard}")),
            "{run}"
        );
    }

    // The same volume on another node (another IP): refused, naming both.
    let elsewhere = rendered.facts(&pod, 1);
    let moved = start_chunkserver(&set, &elsewhere, &volume);
    assert_eq!(
        *moved.status("chunkserver"),
        ContainerStatus::Exited(1),
        "{moved}"
    );
    assert!(
        moved.stderr("chunkserver").contains(&format!(
            "cannot start: this ChunkServer's data was registered from node {} ({}) and its pod is now on node {} ({})",
            facts.node_name, facts.pod_ip, elsewhere.node_name, elsewhere.pod_ip
        )),
        "{moved}"
    );
    assert!(moved.invocations_of("entrypoint.sh").is_empty(), "{moved}");
    assert!(
        !moved
            .stderr("chunkserver")
            .contains("open files hard limit"),
        "the identity is checked first: {moved}"
    );
}

#[test]
#[ignore = "image emulation: needs root and the image files; scripts/test.sh runs it"]
fn emulated_daemons_refuse_to_start_below_their_open_files_need() {
    let rendered = rendered(EXAMPLES[0]);
    let mds = mds_stand_in(None);
    for (suffix, container, need) in [
        ("-chunkserver-0", "chunkserver", "655"),
        ("-mds", "mds", "65536"),
    ] {
        let mut set = under_open_files_limits(&rendered.stateful_set(suffix), 1024, 4096);
        if container == "chunkserver" {
            set = with_mds(&set, &[mds.address()]);
        } else {
            set = with_free_mds_ports(&set);
        }
        let dir = tempfile::tempdir().unwrap();
        let pod = format!("{}-0", set_name(&set));
        let run = start_chunkserver(&set, &rendered.facts(&pod, 0), &dir.path().join("data.img"));
        assert_eq!(*run.status(container), ContainerStatus::Exited(1), "{run}");
        let node = &rendered.facts(&pod, 0).node_name;
        assert!(
            run.stderr(container).contains(&format!(
                "cannot start: the open files hard limit is 4096 and this {} needs {need}",
                if container == "mds" {
                    "MDS"
                } else {
                    "ChunkServer"
                }
            )) && run.stderr(container).contains(&format!(
                "node {node} must give containers a hard limit of at least {need}"
            )),
            "{run}"
        );
        assert!(run.invocations_of("entrypoint.sh").is_empty(), "{run}");
    }
}

/// A stand-in brpc server on 127.0.0.1: it answers each HTTP request with `answer(path, body,
/// n)` (n counts from 0), JSON over HTTP with the request's Content-Type echoed as brpc does
/// (curve-protocols.md §2), one connection at a time, until dropped; it keeps every request.
struct BrpcStandIn {
    port: u16,
    requests: Arc<Mutex<Vec<(String, String)>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BrpcStandIn {
    fn start(answer: impl Fn(&str, &str, usize) -> (u16, String) + Send + 'static) -> BrpcStandIn {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (kept, stopped) = (requests.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut stream) = stream else { continue };
                let Some((path, content_type, body)) = read_http_request(&mut stream) else {
                    continue;
                };
                let n = {
                    let mut kept = kept.lock().unwrap();
                    kept.push((path.clone(), body.clone()));
                    kept.len() - 1
                };
                let (status, text) = answer(&path, &body, n);
                // A framework error is plain text (B:src/brpc/policy/http_rpc_protocol.cpp:801-819).
                let (reason, content_type) = match status {
                    200 => ("OK", content_type.as_str()),
                    400 => ("Bad Request", "text/plain"),
                    404 => ("Not Found", "text/plain"),
                    503 => ("Service Unavailable", "text/plain"),
                    _ => ("Internal Server Error", "text/plain"),
                };
                let response = format!(
                    "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                    text.len()
                );
                let _ = stream.write_all(response.as_bytes());
            }
        });
        BrpcStandIn {
            port,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Every request so far: (path, body).
    fn requests(&self) -> Vec<(String, String)> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for BrpcStandIn {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept; the loop then ends and the listener closes.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
    }
}

/// One HTTP request: its path, Content-Type and body (Content-Length bytes).
fn read_http_request(stream: &mut TcpStream) -> Option<(String, String, String)> {
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .ok()?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let path = line.split_whitespace().nth(1)?.to_string();
    let (mut length, mut content_type) = (0, String::new());
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        match name.to_ascii_lowercase().as_str() {
            "content-length" => length = value.trim().parse().ok()?,
            "content-type" => content_type = value.trim().to_string(),
            _ => {}
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some((path, content_type, String::from_utf8(body).ok()?))
}

/// A stand-in ChunkServer answering `ChunkServerStatus`: copysets not loaded for the first
/// `loading` requests.
fn chunkserver_status_stand_in(loading: usize) -> BrpcStandIn {
    BrpcStandIn::start(move |path, _, n| {
        if path == "/ChunkServerService/ChunkServerStatus" {
            (200, format!("{{\"copysetLoadFin\":{}}}", n >= loading))
        } else {
            (404, "[E1002]Fail to find method".to_string())
        }
    })
}

/// A ChunkServer the stand-in MDS lists: id, `ip:port`, status, online state.
struct Registered {
    id: u32,
    address: String,
    status: &'static str,
    online: &'static str,
}

/// A stand-in primary MDS answering `TopologyService.GetChunkServer` by hostIp + port as Curve
/// v1.2.6 does (topology_service_manager.cpp:268-305): the ChunkServer it lists at that
/// address, -6 for any other, -2 without both; fields in the proto's order
/// (proto/topology.proto:125-139), enums by name (json2pb). Its `diskType` holds a look-alike
/// of the fields after it, quotes escaped as JSON escapes them, which a reader must not take
/// for them.
fn mds_stand_in(registered: Option<Registered>) -> BrpcStandIn {
    BrpcStandIn::start(move |path, body, _| mds_answer(registered.as_ref(), path, body))
}

/// What the stand-in MDS listing `registered` answers to one request.
fn mds_answer(registered: Option<&Registered>, path: &str, body: &str) -> (u16, String) {
    if path != "/TopologyService/GetChunkServer" {
        return (
            404,
            format!("[127.0.0.1:6700][E1002]Fail to find method on `{path}'"),
        );
    }
    let Ok(request) = serde_json::from_str::<Value>(body) else {
        return (
            400,
            "[127.0.0.1:6700][E1003]Fail to parse http body as curve.mds.topology.GetChunkServerInfoRequest, Invalid json format".to_string(),
        );
    };
    let (Some(ip), Some(port)) = (request["hostIp"].as_str(), request["port"].as_u64()) else {
        return (200, "{\"statusCode\":-2}".to_string());
    };
    match registered.filter(|r| r.address == format!("{ip}:{port}")) {
        Some(r) => (
            200,
            format!(
                "{{\"statusCode\":0,\"chunkServerInfo\":{{\"chunkServerID\":{},\"diskType\":\"x\\\"chunkServerID\\\":99,\\\"status\\\":\\\"RETIRED\\\"\",\"hostIp\":\"{ip}\",\"port\":{port},\"status\":\"{}\",\"diskStatus\":\"DISKNORMAL\",\"onlineState\":\"{}\",\"mountPoint\":\"local:///curvebs/chunkserver/data\",\"diskCapacity\":268435456,\"diskUsed\":16777216,\"externalIp\":\"{ip}\"}}}}",
                r.id, r.status, r.online
            ),
        ),
        None => (200, "{\"statusCode\":-6}".to_string()),
    }
}

#[test]
#[ignore = "image emulation: needs root and the image files; scripts/test.sh runs it"]
fn emulated_chunkserver_readiness_waits_for_loaded_copysets() {
    let rendered = rendered(EXAMPLES[0]);
    let set = rendered.stateful_set("-chunkserver-0");
    let container = &set
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers[0];
    let probe = container.readiness_probe.as_ref().unwrap();
    let command = probe.exec.as_ref().unwrap().command.clone().unwrap();
    assert_eq!(command, ["sh", "-c", &chunkserver_ready_script()]);
    let server = chunkserver_status_stand_in(2);
    let port = server.port;
    let check = || {
        std::process::Command::new(&command[0])
            .args(&command[1..])
            .env("POD_IP", "127.0.0.1")
            .env("CURVE_PORT", port.to_string())
            .status()
            .unwrap()
            .success()
    };
    assert!(!check(), "copysets still loading: not ready");
    assert!(!check(), "copysets still loading: not ready");
    assert!(check(), "copysets loaded: ready");
    assert_eq!(server.requests().len(), 3);
    drop(server);
    // Nothing answers: not ready.
    assert!(!check());
}

/// A port of 127.0.0.1 nothing listens on: connections are refused, as by a standby MDS.
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether the ChunkServer's start went on after the empty-disk gate: it recorded its identity
/// (the next step), then either exec'd the entrypoint or, on a machine whose own open files
/// hard limit is below a ChunkServer's need (a CI container; raising it needs
/// CAP_SYS_RESOURCE), refused at the open files check, the step after that.
fn went_past_the_gate(run: &PodRun) -> bool {
    let message = run.termination_message("chunkserver");
    run.exists("chunkserver", IDENTITY_FILE)
        && parse_empty_disk_refusal(&message).is_none()
        && match run.status("chunkserver") {
            ContainerStatus::Exited(0) => run.invocations_of("entrypoint.sh").len() == 1,
            ContainerStatus::Exited(1) => {
                message.starts_with("cannot start: the open files hard limit is ")
            }
            _ => false,
        }
}

/// The example's first ChunkServer pod (slot 0, ordinal 0): its set, facts and `ip:port`.
fn first_chunkserver(rendered: &Rendered) -> (StatefulSet, PodFacts, String) {
    let set = rendered.stateful_set("-chunkserver-0");
    let facts = rendered.facts(&format!("{}-0", set_name(&set)), 0);
    let address = format!(
        "{}:{}",
        facts.pod_ip, rendered.cluster.spec.chunkservers.port
    );
    (set, facts, address)
}

/// What the gate asks: `GetChunkServer` by this pod's IP and port.
fn get_chunkserver(ip: &str, port: &str) -> (String, String) {
    (
        "/TopologyService/GetChunkServer".to_string(),
        format!("{{\"hostIp\":\"{ip}\",\"port\":{port}}}"),
    )
}

#[test]
#[ignore = "image emulation: needs root and the image files; scripts/test.sh runs it"]
fn emulated_empty_disk_is_refused_while_the_mds_lists_a_chunkserver_at_its_address() {
    let rendered = rendered(EXAMPLES[0]);
    let (set, facts, address) = first_chunkserver(&rendered);
    let (ip, port) = address.split_once(':').unwrap();
    for (id, status, online) in [(7, "READWRITE", "UNSTABLE"), (12, "PENDDING", "OFFLINE")] {
        let mds = mds_stand_in(Some(Registered {
            id,
            address: address.clone(),
            status,
            online,
        }));
        let dir = tempfile::tempdir().unwrap();
        let run = start_chunkserver(
            &with_mds(&set, &[mds.address()]),
            &facts,
            &dir.path().join("data.img"),
        );
        assert_eq!(
            *run.status("chunkserver"),
            ContainerStatus::Exited(1),
            "{run}"
        );
        let message = run.termination_message("chunkserver");
        assert_eq!(
            message,
            format!("{}\n", empty_disk_refusal(id, &address, status, online)),
            "{run}"
        );
        assert_eq!(parse_empty_disk_refusal(&message), Some(id));
        assert_eq!(mds.requests(), [get_chunkserver(ip, port)], "{run}");
        assert!(run.invocations_of("entrypoint.sh").is_empty(), "{run}");
        assert!(
            !run.exists("chunkserver", IDENTITY_FILE),
            "the gate runs before anything writes to the volume: {run}"
        );
    }

    // Listed, but the answer does not read as brpc's (an enum as a number): still refused,
    // saying so, without the tag the operator acts on.
    let odd = r#"{"statusCode":0,"chunkServerInfo":{"chunkServerID":7,"status":0}}"#;
    let mds = BrpcStandIn::start(move |_, _, _| (200, odd.to_string()));
    let dir = tempfile::tempdir().unwrap();
    let run = start_chunkserver(
        &with_mds(&set, &[mds.address()]),
        &facts,
        &dir.path().join("data.img"),
    );
    assert_eq!(
        *run.status("chunkserver"),
        ContainerStatus::Exited(1),
        "{run}"
    );
    let message = run.termination_message("chunkserver");
    assert_eq!(
        message,
        format!(
            "cannot start: this disk holds no Curve data and MDS {} lists a ChunkServer at {address}, but its answer cannot be read: {odd}\n",
            mds.address()
        ),
        "{run}"
    );
    assert_eq!(parse_empty_disk_refusal(&message), None);
    assert!(run.invocations_of("entrypoint.sh").is_empty(), "{run}");
}

#[test]
#[ignore = "image emulation: needs root and the image files; scripts/test.sh runs it"]
fn emulated_empty_disk_registers_when_the_mds_lists_none_at_its_address() {
    let rendered = rendered(EXAMPLES[0]);
    let (set, facts, address) = first_chunkserver(&rendered);
    let (ip, port) = address.split_once(':').unwrap();
    // A ChunkServer at the next port (another disk of the node): not this one.
    let next_port = rendered.cluster.spec.chunkservers.port + 1;
    let mds = mds_stand_in(Some(Registered {
        id: 3,
        address: format!("{ip}:{next_port}"),
        status: "READWRITE",
        online: "ONLINE",
    }));
    let dir = tempfile::tempdir().unwrap();
    let run = start_chunkserver(
        &with_mds(&set, &[mds.address()]),
        &facts,
        &dir.path().join("data.img"),
    );
    assert!(went_past_the_gate(&run), "{run}");
    assert!(
        run.stdout("chunkserver").contains(&format!(
            "MDS {} lists no ChunkServer at {address}: this disk registers as a new ChunkServer",
            mds.address()
        )),
        "{run}"
    );
    assert_eq!(mds.requests(), [get_chunkserver(ip, port)], "{run}");
}

#[test]
#[ignore = "image emulation: needs root and the image files; scripts/test.sh runs it"]
fn emulated_disk_with_curve_data_starts_without_asking_the_mds() {
    let rendered = rendered(EXAMPLES[0]);
    let (set, facts, address) = first_chunkserver(&rendered);
    assert_eq!(
        start_of(
            &run_set_pod(
                &rendered,
                &set,
                0,
                &tempfile::tempdir().unwrap().path().join("d.img")
            ),
            "chunkserver"
        )
        .flag("-chunkServerMetaUri"),
        Some(format!("local://{CHUNKSERVER_META_FILE}").as_str()),
        "the gate looks for the file the ChunkServer writes"
    );
    let dir = tempfile::tempdir().unwrap();
    let volume = dir.path().join("data.img");
    // The first start registers (the MDS lists none), and the ChunkServer writes its meta file.
    let first_mds = mds_stand_in(None);
    let first = start_chunkserver(&with_mds(&set, &[first_mds.address()]), &facts, &volume);
    assert!(went_past_the_gate(&first), "{first}");
    std::fs::write(
        first
            .host_path("chunkserver", CHUNKSERVER_META_FILE)
            .unwrap(),
        "a registered ChunkServer's id and token",
    )
    .unwrap();
    drop(first);
    // Restarted while the MDS lists it at this address, as it does for a live ChunkServer.
    let mds = mds_stand_in(Some(Registered {
        id: 7,
        address,
        status: "READWRITE",
        online: "ONLINE",
    }));
    let again = start_chunkserver(&with_mds(&set, &[mds.address()]), &facts, &volume);
    assert!(went_past_the_gate(&again), "{again}");
    assert_eq!(mds.requests(), [], "no question to the MDS: {again}");
}

#[test]
#[ignore = "image emulation: needs root and the image files; scripts/test.sh runs it"]
fn emulated_gate_asks_each_mds_in_turn_and_again_until_one_answers() {
    let rendered = rendered(EXAMPLES[0]);
    let (set, facts, address) = first_chunkserver(&rendered);
    let (ip, port) = address.split_once(':').unwrap();

    // A standby first (it refuses connections), then the primary.
    let standby = format!("127.0.0.1:{}", closed_port());
    let primary = mds_stand_in(Some(Registered {
        id: 7,
        address: address.clone(),
        status: "READWRITE",
        online: "UNSTABLE",
    }));
    let dir = tempfile::tempdir().unwrap();
    let run = start_chunkserver(
        &with_mds(&set, &[standby.clone(), primary.address()]),
        &facts,
        &dir.path().join("data.img"),
    );
    assert!(
        run.stdout("chunkserver").contains(&format!(
            "try 1: no answer from MDS {standby} (curl exit 7)"
        )),
        "{run}"
    );
    assert_eq!(
        run.termination_message("chunkserver"),
        format!(
            "{}\n",
            empty_disk_refusal(7, &address, "READWRITE", "UNSTABLE")
        ),
        "{run}"
    );
    assert_eq!(primary.requests(), [get_chunkserver(ip, port)], "{run}");

    // No MDS answers the first round: a standby refuses the connection and the primary
    // answers brpc's 503 of a server that is stopping (ELOGOFF, curve-protocols.md §0). The
    // gate says so, waits and asks again.
    let primary = BrpcStandIn::start(|path, body, n| match n {
        0 => (503, "[127.0.0.1:6700][E2003]Server is stopping".to_string()),
        _ => mds_answer(None, path, body),
    });
    let dir = tempfile::tempdir().unwrap();
    let run = start_chunkserver(
        &with_mds(&set, &[standby.clone(), primary.address()]),
        &facts,
        &dir.path().join("data.img"),
    );
    let stdout = run.stdout("chunkserver");
    let addresses = format!("{standby},{}", primary.address());
    for line in [
        format!(
            "try 1: no answer from MDS {} (curl exit 22)",
            primary.address()
        ),
        format!("no MDS of {addresses} answered (try 1): asking again in {MDS_RETRY_SECONDS} s"),
        format!("try 2: no answer from MDS {standby} (curl exit 7)"),
        format!(
            "MDS {} lists no ChunkServer at {address}",
            primary.address()
        ),
    ] {
        assert!(stdout.contains(&line), "{line}: {run}");
    }
    assert!(went_past_the_gate(&run), "{run}");
    assert_eq!(
        primary.requests(),
        [get_chunkserver(ip, port), get_chunkserver(ip, port)],
        "{run}"
    );
}

#[test]
#[ignore = "image emulation: needs root and the image files; scripts/test.sh runs it"]
fn emulated_json_field_reads_brpc_answers_with_mawk() {
    let (_, registered) = mds_answer(
        Some(&Registered {
            id: 42,
            address: "10.0.0.4:8200".into(),
            status: "PENDDING",
            online: "OFFLINE",
        }),
        "/TopologyService/GetChunkServer",
        r#"{"hostIp":"10.0.0.4","port":8200}"#,
    );
    let cases = [
        (registered.as_str(), "statusCode", "0"),
        (&registered, "chunkServerID", "42"),
        // The look-alikes in diskType come first; the fields are read, not them.
        (&registered, "status", "PENDDING"),
        (&registered, "onlineState", "OFFLINE"),
        (&registered, "diskStatus", "DISKNORMAL"),
        (r#"{"statusCode":-6}"#, "statusCode", "-6"),
        (r#"{ "statusCode" : -6 }"#, "statusCode", "-6"),
        (r#"{"statusCode":-6}"#, "chunkServerID", ""),
        (
            r#"{"chunkServerInfo":{"status":"READWRITE"},"statusCode":0}"#,
            "statusCode",
            "0",
        ),
        (r#"{"statusCode":{"nested":1}}"#, "statusCode", ""),
        (
            "[127.0.0.1:6700][E1002]Fail to find method",
            "statusCode",
            "",
        ),
        ("", "statusCode", ""),
    ];
    // Each answer reaches the shell as an environment variable, byte for byte.
    let script: String = std::iter::once(json_field_function())
        .chain(cases.iter().enumerate().map(|(n, (_, name, _))| {
            format!("printf '%s=[%s]\\n' {n} \"$(json_field {name} \"$ANSWER_{n}\")\"\n")
        }))
        .collect();
    let env: Vec<Value> = cases
        .iter()
        .enumerate()
        .map(|(n, (json, _, _))| serde_json::json!({"name": format!("ANSWER_{n}"), "value": json}))
        .collect();
    let spec = serde_json::from_value(serde_json::json!({
        "initContainers": [{"name": "read", "image": "curvebs", "command": ["sh", "-c", script], "env": env}],
        "containers": [{"name": "main", "image": "curvebs"}],
    }))
    .unwrap();
    let run = Kubelet::new(image())
        .run_pod(&spec, &PodFacts::default(), &BTreeMap::new())
        .unwrap();
    assert!(run.init_succeeded(), "{run}");
    let expected: String = cases
        .iter()
        .enumerate()
        .map(|(n, (_, _, value))| format!("{n}=[{value}]\n"))
        .collect();
    assert_eq!(run.stdout("read"), expected, "{run}");
}

/// The set with `prelude` (a shell snippet) run in the daemon's container before its command:
/// what a container's earlier runs left in its volumes.
fn with_prelude(set: &StatefulSet, prelude: &str) -> StatefulSet {
    let mut set = set.clone();
    let pod = set.spec.as_mut().unwrap().template.spec.as_mut().unwrap();
    let command = pod.containers[0].command.as_mut().unwrap();
    let mut wrapped = vec![
        "sh".to_string(),
        "-c".to_string(),
        format!("{prelude}\nexec \"$@\""),
        "prelude".to_string(),
    ];
    wrapped.append(command);
    *command = wrapped;
    set
}

/// The set's daemon told its port by `CURVE_PORT` (a ChunkServer's) is `port`.
fn with_curve_port(set: &StatefulSet, port: u16) -> StatefulSet {
    let mut set = set.clone();
    let pod = set.spec.as_mut().unwrap().template.spec.as_mut().unwrap();
    pod.containers[0]
        .env
        .as_mut()
        .unwrap()
        .iter_mut()
        .find(|e| e.name == "CURVE_PORT")
        .expect("a ChunkServer is told its port")
        .value = Some(port.to_string());
    set
}

#[test]
#[ignore = "image emulation: needs root and the image files; scripts/test.sh runs it"]
fn emulated_daemons_delete_their_oldest_logs_beyond_the_budget_before_they_start() {
    use curve_operator::desired::start::{LOG_FILE_MIB, LOG_KEEP_MIB};
    let rendered = rendered(EXAMPLES[0]);
    let mds = mds_stand_in(None);
    let files = 12;
    for (suffix, container, program) in [
        ("-mds", "mds", "curvebs-mds"),
        ("-chunkserver-0", "chunkserver", "curvebs-chunkserver"),
    ] {
        let dir = format!("/curvebs/{container}/logs");
        // Twelve full files of earlier runs, an hour apart (file i is i hours old), as glog
        // names them, with glog's symlink to the newest; sparse, so they cost nothing here.
        let prelude = format!(
            "i=0\nwhile [ $i -lt {files} ]; do\n  \
               f={dir}/{program}.log.INFO.2026010$i-000000.$((100 + i))\n  \
               truncate -s {LOG_FILE_MIB}M $f\n  \
               touch -d @$(( $(date +%s) - 3600 * i )) $f\n  \
               i=$((i + 1))\n\
             done\n\
             ln -s {program}.log.INFO.20260100-000000.100 {dir}/{program}.INFO"
        );
        let set = rendered.stateful_set(suffix);
        let set = if container == "chunkserver" {
            with_prelude(&with_mds(&set, &[mds.address()]), &prelude)
        } else {
            with_prelude(&with_free_mds_ports(&set), &prelude)
        };
        let volume = tempfile::tempdir().unwrap();
        let pod = format!("{}-0", set_name(&set));
        let run = start_chunkserver(
            &set,
            &rendered.facts(&pod, 0),
            &volume.path().join("data.img"),
        );
        let kept: BTreeSet<String> = run.list(container, &dir).unwrap().into_iter().collect();
        let kept_files = (LOG_KEEP_MIB / LOG_FILE_MIB) as usize;
        let expected: BTreeSet<String> = (0..kept_files)
            .map(|i| format!("{program}.log.INFO.2026010{i}-000000.{}", 100 + i))
            .chain([format!("{program}.INFO")])
            .collect();
        assert_eq!(kept, expected, "{run}");
        let output = run.stdout(container);
        for i in kept_files..files {
            assert!(
                output.contains(&format!(
                    "curve-start: deleted old log file {dir}/{program}.log.INFO.2026010{i}-000000.{} (logs kept within {LOG_KEEP_MIB} MiB)",
                    100 + i
                )),
                "{run}"
            );
        }
        // The cleanup runs before the open files check, whatever that says on this machine.
        assert!(
            output.contains("curve-start: core file size limit "),
            "{run}"
        );
    }
}

#[test]
#[ignore = "image emulation: needs root and the image files; scripts/test.sh runs it"]
fn emulated_a_port_taken_on_the_node_is_refused_naming_it_and_the_node() {
    let rendered = rendered(EXAMPLES[0]);
    let mds = mds_stand_in(None);
    let set = with_mds(&rendered.stateful_set("-chunkserver-0"), &[mds.address()]);
    let pod = format!("{}-0", set_name(&set));
    let facts = rendered.facts(&pod, 0);
    // Something listening on every address of the node (the container sees the host's sockets,
    // as a host-network pod does): refused before anything else.
    let taken = TcpListener::bind("0.0.0.0:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let volume = tempfile::tempdir().unwrap();
    let run = start_chunkserver(
        &with_curve_port(&set, port),
        &facts,
        &volume.path().join("data.img"),
    );
    assert_eq!(
        *run.status("chunkserver"),
        ContainerStatus::Exited(1),
        "{run}"
    );
    let refusal = format!(
        "cannot start: port {port} on node {} is already taken by another process, and this ChunkServer must listen on it on {} (spec.chunkservers.port plus the disk slot)",
        facts.node_name, facts.pod_ip
    );
    assert!(
        run.termination_message("chunkserver").starts_with(&refusal),
        "{run}"
    );
    assert!(run.invocations_of("entrypoint.sh").is_empty(), "{run}");
    assert!(
        mds.requests().is_empty(),
        "the port is checked first: {run}"
    );
    drop(taken);

    // A listener on loopback only (a host etcd's default) does not collide with the pod IP.
    let loopback = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = loopback.local_addr().unwrap().port();
    let run = start_chunkserver(
        &with_curve_port(&set, port),
        &facts,
        &volume.path().join("data2.img"),
    );
    assert!(
        !run.stderr("chunkserver").contains("is already taken"),
        "{run}"
    );
    assert!(went_past_the_gate(&run), "{run}");
}

//! Tests that run pods for real: they need root, and fail (never pass silently) without it.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::PodSpec;
use serde_json::json;
use tempfile::TempDir;

use crate::{ContainerStatus, ImageFiles, Kubelet, PodFacts, PodRun, VolumeBacking};

fn require_root() {
    // SAFETY: geteuid(2) cannot fail.
    let uid = unsafe { libc::geteuid() };
    assert!(
        uid == 0,
        "these tests need root: the emulation mounts file systems and chroots (running as uid {uid})"
    );
}

/// A tiny stand-in for the image's config files, in `<tmp>/<version>/conf`.
fn image(version: &str) -> (TempDir, ImageFiles) {
    let tmp = tempfile::tempdir().unwrap();
    let conf = tmp.path().join(version).join("conf");
    fs::create_dir_all(&conf).unwrap();
    fs::write(
        conf.join("tools.conf"),
        "# mds地址\nmdsAddr=${cluster_mds_addr}\nrootUserName=root\nrootUserPassword=root_password\n",
    )
    .unwrap();
    fs::write(
        conf.join("mds.conf"),
        "mds.listen.addr=${service_addr}:${service_port}\nmds.common.logDir=${prefix}/logs\n",
    )
    .unwrap();
    fs::write(
        conf.join("etcd.conf"),
        "name: etcd${service_host_sequence}\n",
    )
    .unwrap();
    let files = ImageFiles::from_conf_dir(&conf)
        .unwrap()
        .with_version(version)
        .unwrap();
    (tmp, files)
}

fn kubelet(version: &str) -> (TempDir, Kubelet) {
    require_root();
    let (tmp, files) = image(version);
    (tmp, Kubelet::new(files))
}

fn spec(value: serde_json::Value) -> PodSpec {
    serde_json::from_value(value).expect("a valid PodSpec")
}

/// An init container running `script` with sh.
fn sh(name: &str, script: &str) -> serde_json::Value {
    json!({"name": name, "image": "curvebs", "command": ["/bin/sh", "-c", script]})
}

/// A pod with these init containers and one main container that is not run.
fn init_pod(init: Vec<serde_json::Value>, volumes: serde_json::Value) -> PodSpec {
    spec(json!({
        "initContainers": init,
        "containers": [{"name": "main", "image": "curvebs"}],
        "volumes": volumes,
    }))
}

fn run_pod(kubelet: &Kubelet, spec: &PodSpec, facts: &PodFacts) -> PodRun {
    kubelet
        .run_pod(spec, facts, &BTreeMap::new())
        .expect("the emulation runs")
}

fn facts() -> PodFacts {
    PodFacts {
        name: "mds-0".into(),
        namespace: "curve".into(),
        node_name: "node-7".into(),
        pod_ip: "10.1.0.7".into(),
        host_ip: "192.168.0.7".into(),
        config_maps: BTreeMap::from([(
            "mds-conf".to_string(),
            BTreeMap::from([
                (
                    "mds.conf".to_string(),
                    "mds.listen.addr=10.1.0.7:6700\n".to_string(),
                ),
                (
                    "tools.conf".to_string(),
                    "mdsAddr=10.1.0.7:6700\nrootUserName=root\nrootUserPassword=pw\n".to_string(),
                ),
                (
                    "extra".to_string(),
                    "not projected when items are listed".to_string(),
                ),
            ]),
        )]),
        secrets: BTreeMap::from([(
            "root-user".to_string(),
            BTreeMap::from([("password".to_string(), "s3cret".to_string())]),
        )]),
    }
}

const FORMAT: &str = "/curvebs/tools/sbin/curve_format";

/// Runs several calls of a stand-in in one container and returns "rc=<code>" lines and
/// stderr, so that a single pod covers many cases.
fn format_calls(version: &str, calls: &[&str]) -> PodRun {
    let (_tmp, kubelet) = kubelet(version);
    let script: String = calls
        .iter()
        .map(|args| format!("{FORMAT} {args} -allocateByPercent=false -preAllocateNum=2 -filePoolDir=/data/pool -filePoolMetaPath=/data/pool.meta -fileSystemPath=/data; echo rc=$?\n"))
        .collect();
    let pod = init_pod(
        vec![sh("format", &script)],
        json!([{"name": "data", "emptyDir": {}}]),
    );
    let mut pod = pod;
    pod.init_containers.as_mut().unwrap()[0].volume_mounts = Some(vec![
        serde_json::from_value(json!({"name": "data", "mountPath": "/data"})).unwrap(),
    ]);
    run_pod(&kubelet, &pod, &facts())
}

fn rc_lines(run: &PodRun, container: &str) -> Vec<String> {
    run.stdout(container)
        .lines()
        .filter(|l| l.starts_with("rc="))
        .map(str::to_string)
        .collect()
}

#[test]
fn curve_format_v1_2_6_refuses_block_size_unless_undefok() {
    let run = format_calls(
        "v1.2.6",
        &[
            "-blockSize=4096",
            "-blockSize=4096 -undefok=blockSize",
            "-blockSize 4096 -undefok blockSize",
            "--blockSize=4096 -undefok=fileSize,blockSize",
        ],
    );
    assert!(run.status("format").succeeded(), "{run}");
    assert_eq!(
        rc_lines(&run, "format"),
        ["rc=1", "rc=0", "rc=0", "rc=0"],
        "{run}"
    );
    assert_eq!(
        run.stderr("format")
            .lines()
            .filter(|l| l.contains("ERROR"))
            .collect::<Vec<_>>(),
        ["ERROR: unknown command line flag 'blockSize'"]
    );
    let calls = run.invocations_of("curve_format");
    assert_eq!(calls.len(), 4);
    assert_eq!(calls[0].argv[0], FORMAT);
    assert_eq!(calls[0].args()[0], "-blockSize=4096");
    assert_eq!(calls[0].container, "format");
    assert_eq!(calls[0].env["HOSTNAME"], "mds-0");
}

#[test]
fn curve_format_v1_2_7_knows_block_size() {
    let run = format_calls("v1.2.7", &["-blockSize=4096", "-blockSize=abc"]);
    assert_eq!(rc_lines(&run, "format"), ["rc=0", "rc=1"], "{run}");
    assert!(
        run.stderr("format")
            .contains("ERROR: illegal value 'abc' specified for uint32 flag 'blockSize'"),
        "{run}"
    );
}

#[test]
fn curve_format_parses_flags_as_gflags() {
    let run = format_calls(
        "v1.2.6",
        &[
            "--fileSize 1024",
            "-noneedWriteZero",
            "-needWriteZero=no",
            "-nofileSize",
            "-fileSize=-1",
            "-allocatePercent=0x10",
            "-bogus -other=1 -undefok=other",
            "-log_dir=/tmp -v=3 -logtostderr",
            "-- -blockSize=1",
            "-fileSize",
        ],
    );
    assert_eq!(
        rc_lines(&run, "format"),
        [
            "rc=0", "rc=0", "rc=0", "rc=1", "rc=1", "rc=0", "rc=1", "rc=0", "rc=0", "rc=1"
        ],
        "{run}"
    );
    let stderr = run.stderr("format");
    assert!(
        stderr.contains("ERROR: boolean value (nofileSize) specified for uint32 command line flag"),
        "{stderr}"
    );
    assert!(
        stderr.contains("ERROR: unknown command line flag 'bogus'"),
        "{stderr}"
    );
    assert!(!stderr.contains("'other'"), "{stderr}");
    // A flag without "=" takes the next word as its value, even one that looks like a flag.
    assert!(
        stderr.contains(
            "ERROR: illegal value '-allocateByPercent=false' specified for uint32 flag 'fileSize'"
        ),
        "{stderr}"
    );
    let meta = run.read("format", "/data/pool.meta").unwrap();
    assert!(meta.contains("\"chunkSize\":"), "{meta}");
}

/// The real tool's trap: below `allocatePercent` free it exits 0 without a meta file. A fresh
/// ext4 image keeps 5% for root, so 99% can never be met.
#[test]
fn curve_format_free_share_trap_on_ext4() {
    let (tmp, kubelet) = kubelet("v1.2.6");
    let volumes = BTreeMap::from([(
        "data-chunkserver-0".to_string(),
        VolumeBacking::Ext4 {
            image: tmp.path().join("disks/cs0.img"),
            size_bytes: 128 << 20,
        },
    )]);
    let format = |percent: u32| {
        format!(
            "{FORMAT} -allocatePercent={percent} -fileSize=16777216 -filePoolDir=/curvebs/chunkserver/data/chunkfilepool -filePoolMetaPath=/curvebs/chunkserver/data/chunkfilepool.meta -fileSystemPath=/curvebs/chunkserver/data/chunkfilepool"
        )
    };
    let meta = "/curvebs/chunkserver/data/chunkfilepool.meta";
    let mut pod = spec(json!({
        "initContainers": [
            sh("format-99", &format!("{}; echo rc=$?; test -e {meta} && echo meta || echo no-meta", format(99))),
            sh("format-50", &format!("{}; echo rc=$?; test -e {meta} && echo meta || echo no-meta", format(50))),
        ],
        "containers": [{"name": "chunkserver", "image": "curvebs"}],
        "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data-chunkserver-0"}}],
    }));
    for c in pod
        .init_containers
        .iter_mut()
        .flatten()
        .chain(&mut pod.containers)
    {
        c.volume_mounts = Some(vec![
            serde_json::from_value(
                json!({"name": "data", "mountPath": "/curvebs/chunkserver/data"}),
            )
            .unwrap(),
        ]);
    }
    let facts = PodFacts {
        name: "chunkserver-0".into(),
        ..PodFacts::default()
    };
    let first = kubelet.run_pod(&pod, &facts, &volumes).unwrap();
    assert_eq!(first.stdout("format-99"), "rc=0\nno-meta\n", "{first}");
    assert!(
        first
            .stderr("format-99")
            .contains("disk free space not enough."),
        "{first}"
    );
    assert_eq!(first.stdout("format-50"), "rc=0\nmeta\n", "{first}");
    assert!(
        first
            .read("chunkserver", meta)
            .unwrap()
            .contains("chunkfilepool")
    );
    assert_eq!(
        first
            .list("chunkserver", "/curvebs/chunkserver/data/chunkfilepool")
            .unwrap(),
        ["1", "2"],
        "half of 128 MiB holds three chunks, and two threads allocate one each"
    );
    drop(first);

    // The backing outlives the run: a second run of the pod finds the data.
    let mut again = pod.clone();
    again.init_containers = Some(vec![
        serde_json::from_value(sh(
            "check",
            &format!("cat {meta}; stat -f -c %T /curvebs/chunkserver/data"),
        ))
        .unwrap(),
    ]);
    again.init_containers.as_mut().unwrap()[0].volume_mounts =
        pod.containers[0].volume_mounts.clone();
    let second = kubelet.run_pod(&again, &facts, &volumes).unwrap();
    assert!(second.status("check").succeeded(), "{second}");
    assert!(second.stdout("check").contains("\"chunks\":2"), "{second}");
    assert!(second.stdout("check").contains("ext2/ext3"), "{second}");
}

#[test]
fn command_and_args_are_expanded_from_the_env() {
    let (_tmp, kubelet) = kubelet("v1.2.6");
    let pod = spec(json!({
        "initContainers": [{
            "name": "show",
            "image": "curvebs",
            "command": ["/bin/sh", "-c"],
            "args": ["echo \"$1 $2 $3 $4 $5\"; echo \"$(echo shell) ${POD_IP}\"", "sh", "$(POD_NAME)", "$(ADDR)", "$$(POD_NAME)", "$(MISSING)", "$(EMPTY)x"],
            "env": [
                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                {"name": "ADDR", "value": "$(POD_IP):6700"},
                {"name": "LATER", "value": "$(DEFINED_AFTER)"},
                {"name": "DEFINED_AFTER", "value": "x"},
                {"name": "EMPTY", "value": ""},
                {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                {"name": "HOST_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
            ],
        }],
        "containers": [{"name": "main", "image": "curvebs", "args": ["--role=mds", "--args=-mdsAddr=$(MDS_ADDR)"],
                        "env": [{"name": "MDS_ADDR", "value": "1.2.3.4:6700"}]}],
    }));
    let run = run_pod(&kubelet, &pod, &facts());
    assert_eq!(
        run.command_line("show")[4..],
        ["mds-0", "10.1.0.7:6700", "$(POD_NAME)", "$(MISSING)", "x"]
    );
    assert_eq!(
        run.stdout("show"),
        "mds-0 10.1.0.7:6700 $(POD_NAME) $(MISSING) x\nshell 10.1.0.7\n",
        "{run}"
    );
    let env = run.env("show");
    assert_eq!(
        env["LATER"], "$(DEFINED_AFTER)",
        "only earlier variables expand"
    );
    assert_eq!(
        (
            env["NODE"].as_str(),
            env["NS"].as_str(),
            env["HOST_IP"].as_str()
        ),
        ("node-7", "curve", "192.168.0.7")
    );
    assert_eq!(
        run.command_line("main"),
        [
            "/entrypoint.sh",
            "--role=mds",
            "--args=-mdsAddr=1.2.3.4:6700"
        ]
    );
    assert_eq!(*run.status("main"), ContainerStatus::NotRun);
}

#[test]
fn the_process_env_is_exactly_the_containers() {
    let (_tmp, kubelet) = kubelet("v1.2.6");
    let pod = spec(json!({
        "initContainers": [{
            "name": "env",
            "image": "curvebs",
            // `$$$$`: the kubelet turns `$$` into `$`.
            "command": ["/bin/sh", "-c", "tr '\\0' '\\n' < /proc/$$$$/environ | sort; hostname"],
            "env": [{"name": "A", "value": "1"}, {"name": "TZ", "value": "UTC"}],
        }],
        "containers": [{"name": "main", "image": "curvebs"}],
    }));
    let run = run_pod(&kubelet, &pod, &facts());
    assert_eq!(
        run.stdout("env"),
        "A=1\nHOSTNAME=mds-0\nPATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\nTZ=UTC\nmds-0\n",
        "{run}"
    );
}

#[test]
fn secret_and_config_map_key_refs() {
    let (_tmp, kubelet) = kubelet("v1.2.6");
    let env_container = |name: &str, env: serde_json::Value| json!({"name": name, "image": "curvebs", "command": ["/bin/sh", "-c", "echo \"${PASSWORD-unset}\""], "env": env});
    let key_ref = |kind: &str, name: &str, key: &str, optional: bool| json!([{"name": "PASSWORD", "valueFrom": {kind: {"name": name, "key": key, "optional": optional}}}]);
    let cases = [
        (
            key_ref("secretKeyRef", "root-user", "password", false),
            Ok("s3cret\n"),
        ),
        (
            key_ref("secretKeyRef", "root-user", "missing", true),
            Ok("unset\n"),
        ),
        (
            key_ref("secretKeyRef", "absent", "password", true),
            Ok("unset\n"),
        ),
        (
            key_ref("secretKeyRef", "root-user", "missing", false),
            Err("CreateContainerConfigError: couldn't find key missing in Secret curve/root-user"),
        ),
        (
            key_ref("secretKeyRef", "absent", "password", false),
            Err("CreateContainerConfigError: secret \"absent\" not found"),
        ),
        (
            key_ref("configMapKeyRef", "mds-conf", "extra", false),
            Ok("not projected when items are listed\n"),
        ),
        (
            key_ref("configMapKeyRef", "nope", "x", false),
            Err("CreateContainerConfigError: configmap \"nope\" not found"),
        ),
    ];
    for (env, expected) in cases {
        let pod = spec(
            json!({"initContainers": [env_container("c", env.clone())], "containers": [{"name": "main", "image": "curvebs"}]}),
        );
        let run = run_pod(&kubelet, &pod, &facts());
        match expected {
            Ok(stdout) => assert_eq!(run.stdout("c"), stdout, "{env}: {run}"),
            Err(why) => assert_eq!(
                *run.status("c"),
                ContainerStatus::FailedToStart(why.into()),
                "{env}"
            ),
        }
    }
}

fn mount(value: serde_json::Value) -> k8s_openapi::api::core::v1::VolumeMount {
    serde_json::from_value(value).unwrap()
}

#[test]
fn config_map_items_sub_paths_and_read_only_mounts() {
    let (_tmp, kubelet) = kubelet("v1.2.6");
    let mut pod = spec(json!({
        "initContainers": [sh("prepare", "set -e
            cat /curvebs/mds/conf/mds.conf
            ls -a /conf | tr '\\n' ' '; echo
            stat -c %a /conf/..data/tools.conf
            echo x > /conf/new 2>/dev/null && echo writable || echo read-only
            mkdir /work/sub/dir && echo x > /work/sub/dir/file
            echo copied > /scratch/made-by-init
        ")],
        "containers": [{"name": "mds", "image": "curvebs"}],
        "volumes": [
            {"name": "conf", "configMap": {"name": "mds-conf", "items": [
                {"key": "mds.conf", "path": "mds.conf"},
                {"key": "tools.conf", "path": "tools.conf", "mode": 0o600},
            ]}},
            {"name": "scratch", "emptyDir": {}},
        ],
    }));
    pod.init_containers.as_mut().unwrap()[0].volume_mounts = Some(vec![
        mount(
            json!({"name": "conf", "mountPath": "/curvebs/mds/conf/mds.conf", "subPath": "mds.conf"}),
        ),
        mount(json!({"name": "conf", "mountPath": "/conf"})),
        mount(json!({"name": "scratch", "mountPath": "/work/sub", "subPath": "a/b"})),
        mount(json!({"name": "scratch", "mountPath": "/scratch"})),
    ]);
    pod.containers[0].volume_mounts = Some(vec![
        mount(
            json!({"name": "conf", "mountPath": "/etc/curve/tools.conf", "subPath": "tools.conf"}),
        ),
        mount(json!({"name": "scratch", "mountPath": "/curvebs/mds/data", "readOnly": true})),
    ]);
    let run = run_pod(&kubelet, &pod, &facts());
    assert!(run.status("prepare").succeeded(), "{run}");
    assert_eq!(
        run.stdout("prepare"),
        "mds.listen.addr=10.1.0.7:6700\n. .. ..2006_01_02_15_04_05.000000001 ..data mds.conf tools.conf \n600\nread-only\n",
        "{run}"
    );
    // Seen from outside, as each container sees it.
    assert_eq!(run.read("prepare", "/work/sub/dir/file").unwrap(), "x\n");
    assert_eq!(run.read("prepare", "/scratch/a/b/dir/file").unwrap(), "x\n");
    assert_eq!(
        run.read("mds", "/curvebs/mds/data/made-by-init").unwrap(),
        "copied\n"
    );
    assert!(
        run.read("mds", "/etc/curve/tools.conf")
            .unwrap()
            .contains("rootUserName=root")
    );
    assert!(
        !run.exists("mds", "/conf"),
        "the main container does not mount /conf"
    );
    assert!(run.exists("prepare", "/conf/tools.conf"));
    assert!(
        !run.exists("prepare", "/conf/extra"),
        "only the listed items"
    );
    // Each container has its own copy of the image: the default conf, empty role dirs.
    assert!(
        run.read("mds", "/curvebs/conf/mds.conf")
            .unwrap()
            .contains("${service_addr}")
    );
    assert_eq!(
        run.list("mds", "/curvebs/mds/conf").unwrap(),
        Vec::<String>::new()
    );
    assert!(
        run.list("mds", "/curvebs/mds")
            .unwrap()
            .contains(&"sbin".to_string())
    );
    assert_eq!(
        run.list("mds", "/curvebs/tools/sbin").unwrap(),
        ["curve_format", "curve_ops_tool", "curvebs-tool"]
    );
    assert!(run.exists("mds", "/usr/bin/curve_ops_tool"));
    assert!(run.exists("mds", "/bin/sh"), "through bin -> usr/bin");
    assert_eq!(
        fs::read_link(
            run.host_path("mds", "/etc/alternatives")
                .unwrap()
                .join("awk")
        )
        .unwrap(),
        Path::new("/usr/bin/mawk")
    );
    assert!(
        run.read("mds", "/etc/hosts")
            .unwrap()
            .contains("10.1.0.7\tmds-0")
    );
}

#[test]
fn init_containers_run_in_order_and_stop_at_the_first_failure() {
    let (_tmp, kubelet) = kubelet("v1.2.6");
    let mut pod = init_pod(
        vec![
            sh("first", "echo first >> /shared/log"),
            sh(
                "second",
                "echo second >> /shared/log; echo oops >&2; exit 3",
            ),
            sh("third", "echo third >> /shared/log"),
        ],
        json!([{"name": "shared", "emptyDir": {}}]),
    );
    for c in pod.init_containers.iter_mut().flatten() {
        c.volume_mounts = Some(vec![mount(
            json!({"name": "shared", "mountPath": "/shared"}),
        )]);
    }
    let run = run_pod(&kubelet, &pod, &facts());
    assert_eq!(*run.status("first"), ContainerStatus::Exited(0));
    assert_eq!(*run.status("second"), ContainerStatus::Exited(3));
    assert_eq!(*run.status("third"), ContainerStatus::NotRun);
    assert_eq!(*run.status("main"), ContainerStatus::NotRun);
    assert_eq!(run.failed_init_container().unwrap().name, "second");
    assert!(!run.init_succeeded());
    assert_eq!(run.stderr("second"), "oops\n");
    assert_eq!(run.read("first", "/shared/log").unwrap(), "first\nsecond\n");
}

#[test]
fn a_container_that_runs_too_long_is_killed() {
    let (_tmp, kubelet) = kubelet("v1.2.6");
    let kubelet = kubelet.init_timeout(Duration::from_millis(300));
    let pod = init_pod(
        vec![
            sh("slow", "sleep 30 & sleep 20; echo never"),
            sh("after", "true"),
        ],
        json!([]),
    );
    let started = Instant::now();
    let run = run_pod(&kubelet, &pod, &facts());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        *run.status("slow"),
        ContainerStatus::TimedOut(Duration::from_millis(300))
    );
    assert_eq!(*run.status("after"), ContainerStatus::NotRun);
    assert_eq!(run.failed_init_container().unwrap().name, "slow");
}

#[test]
fn start_failures_are_reported_as_such() {
    let (_tmp, kubelet) = kubelet("v1.2.6");
    let pod = spec(json!({
        "initContainers": [{"name": "missing", "image": "curvebs", "command": ["no-such-tool"]}],
        "containers": [{"name": "main", "image": "curvebs"}],
    }));
    let run = run_pod(&kubelet, &pod, &facts());
    assert_eq!(
        *run.status("missing"),
        ContainerStatus::FailedToStart(
            "StartError: exec: \"no-such-tool\": executable file not found in $PATH".into()
        )
    );

    let pod = spec(json!({
        "initContainers": [sh("never", "true")],
        "containers": [{"name": "main", "image": "curvebs"}],
        "volumes": [{"name": "conf", "configMap": {"name": "absent"}}],
    }));
    let run = run_pod(&kubelet, &pod, &facts());
    assert_eq!(
        run.failed_mount(),
        Some("MountVolume.SetUp failed for volume \"conf\": configmap \"absent\" not found")
    );
    assert_eq!(*run.status("never"), ContainerStatus::NotRun);
}

#[test]
fn main_containers_run_when_asked() {
    let (_tmp, kubelet) = kubelet("v1.2.6");
    let kubelet = kubelet.run_main_containers(true).chunkservers(3, 2);
    let mut pod = spec(json!({
        "containers": [sh("job", "set -e
            /curvebs/tools/sbin/curve_ops_tool chunkserver-status
            curve_ops_tool chunkserver-status -confPath=/etc/curve/tools.conf > /dev/null
            /curvebs/tools/sbin/curvebs-tool -op=create_physicalpool -cluster_map=/etc/curve/topo.json
            if /curvebs/tools/sbin/curvebs-tool -op=create_logicalpool -cluster_map=/etc/curve/topo.json -mds_addr=mds-0.mds:6700; then exit 9; fi
            if /curvebs/tools/sbin/curve_ops_tool chunkserver-status -confPath=/curvebs/conf/tools.conf; then exit 8; fi
            printf 'mdsAddr=10.1.0.7:6700\\nrootUserName=root\\n' > /tmp/no-password.conf
            if curve_ops_tool status -confPath /tmp/no-password.conf; then exit 7; fi
        ")],
        "volumes": [{"name": "conf", "configMap": {"name": "mds-conf"}}],
    }));
    pod.containers[0].volume_mounts = Some(vec![
        mount(
            json!({"name": "conf", "mountPath": "/etc/curve/tools.conf", "subPath": "tools.conf"}),
        ),
        mount(json!({"name": "conf", "mountPath": "/etc/curve/topo.json", "subPath": "extra"})),
    ]);
    let run = run_pod(&kubelet, &pod, &facts());
    assert!(run.status("job").succeeded(), "{run}");
    assert!(
        run.stdout("job").starts_with(
            "ChunkServer status:\nversion: 1.2.6\nchunkserver: total num = 3, online = 2, offline = 1(recoveringout = 0, chunkserverlist: [])\nInit channel to all mds fail!\n"
        ),
        "{run}"
    );
    assert!(
        run.stderr("job")
            .contains("Invalid sub mds ip:port provided: mds-0.mds:6700"),
        "{run}"
    );
    assert!(
        run.stderr("job")
            .contains("Invalid address=`${cluster_mds_addr}'"),
        "the image's tools.conf still holds placeholders: {run}"
    );
    assert!(
        run.stderr("job")
            .contains("Mising rootUserPassword in '/tmp/no-password.conf'"),
        "{run}"
    );
    let tool_calls = run.invocations_of("curvebs-tool");
    assert_eq!(tool_calls.len(), 2);
    assert_eq!(
        tool_calls[0].args(),
        [
            "-op=create_physicalpool",
            "-cluster_map=/etc/curve/topo.json"
        ]
    );
    assert_eq!(run.invocations_of("curve_ops_tool").len(), 4);
}

/// The stand-ins read config files with Curve's rules: every space removed, `#` cuts the value,
/// the last occurrence of a key wins.
#[test]
fn stand_ins_read_config_files_as_curve_does() {
    let (_tmp, kubelet) = kubelet("v1.2.6");
    let tool = "/curvebs/tools/sbin/curvebs-tool -op=create_physicalpool -cluster_map=/etc/hosts";
    let script = format!(
        "printf 'mdsAddr = 10.0.0.1 : 6700 , 10.0.0.2:6700   # two MDSs\\n' > /tmp/spaces.conf
        printf 'mdsAddr=10.0.0.1:6700\\nmdsAddr=mds-0:6700\\n' > /tmp/last-wins.conf
        printf 'mdsAddr=#10.0.0.1:6700\\n' > /tmp/commented.conf
        printf 'rootUserName=root\\nrootUserPassword=\\n' > /tmp/empty-password.conf
        for conf in spaces last-wins commented missing; do {tool} -confPath=/tmp/$conf.conf; echo $conf=$?; done
        curve_ops_tool mds-status -confPath=/tmp/empty-password.conf -mdsAddr=10.0.0.1:6700 2>/dev/null; echo empty-password=$?
        curve_ops_tool version -confPath=/nonexistent; echo version=$?
        curve_ops_tool mds-status -confPath=/nonexistent; echo no-conf=$?
        curve_ops_tool; echo no-command=$?
        "
    );
    let pod = init_pod(vec![sh("tools", &script)], json!([]));
    let run = run_pod(&kubelet, &pod, &facts());
    let results: Vec<&str> = run
        .stdout("tools")
        .lines()
        .filter(|l| l.contains('=') && !l.contains(' '))
        .collect();
    assert_eq!(
        results,
        [
            "spaces=0",
            "last-wins=255",
            "commented=255",
            // No config file: the default 127.0.0.1:6666.
            "missing=0",
            "empty-password=0",
            "version=0",
            "no-conf=255",
            "no-command=255",
        ],
        "{run}"
    );
    assert!(run.stdout("tools").contains("\n1.2.6\n"), "{run}");
    assert!(
        run.stderr("tools")
            .contains("Open config file '/nonexistent' failed"),
        "{run}"
    );
}

/// The image's real config files (`../shared/curve-image`), as the operator's tests will use
/// them.
#[test]
#[ignore = "needs ../shared/curve-image"]
fn the_real_image_files() {
    require_root();
    let files = ImageFiles::locate(env!("CARGO_MANIFEST_DIR")).expect("the shared image files");
    let kubelet = Kubelet::new(files);
    let pod = init_pod(
        vec![sh(
            "check",
            "ls /curvebs/conf; /curvebs/tools/sbin/curve_ops_tool chunkserver-status -confPath=/curvebs/conf/tools.conf; echo rc=$?",
        )],
        json!([]),
    );
    let run = run_pod(&kubelet, &pod, &facts());
    assert!(run.stdout("check").contains("chunkserver.conf"), "{run}");
    assert!(run.stdout("check").ends_with("rc=255\n"), "{run}");
    let chunkserver = run.read("main", "/curvebs/conf/chunkserver.conf").unwrap();
    let keys: Vec<String> = crate::conf::placeholders(&chunkserver)
        .into_iter()
        .map(|(key, _)| key)
        .collect();
    for key in [
        "global.ip",
        "mds.listen.addr",
        "curve.config_path",
        "s3.config_path",
    ] {
        assert!(keys.contains(&key.to_string()), "{key} in {keys:?}");
    }
    let mds = crate::conf::parse_curve_conf(&run.read("main", "/curvebs/conf/mds.conf").unwrap());
    assert_eq!(mds["mds.leader.sessionInterSec"], "5");
    let etcd = crate::conf::parse_etcd_conf(&run.read("main", "/curvebs/conf/etcd.conf").unwrap());
    assert_eq!(etcd["auto-compaction-retention"], "1");
    assert_eq!(etcd["data-dir"], "${prefix}/data");
}

/// A StatefulSet's claim templates are volumes named after the template; a Job's pod runs its
/// main container when asked.
#[test]
fn stateful_set_claim_templates_and_job_pods() {
    let (tmp, kubelet) = kubelet("v1.2.6");
    let data_mount = json!([{"name": "data", "mountPath": "/curvebs/chunkserver/data"}]);
    let mut init = sh("touch", "hostname > /curvebs/chunkserver/data/owner");
    init["volumeMounts"] = data_mount.clone();
    let stateful_set: k8s_openapi::api::apps::v1::StatefulSet = serde_json::from_value(json!({
        "metadata": {"name": "chunkserver"},
        "spec": {
            "selector": {},
            "serviceName": "chunkserver",
            "template": {"spec": {
                "initContainers": [init],
                "containers": [{"name": "chunkserver", "image": "curvebs", "volumeMounts": data_mount}],
            }},
            "volumeClaimTemplates": [{"metadata": {"name": "data"}}],
        },
    }))
    .unwrap();
    let disk = tmp.path().join("disk");
    let volumes = BTreeMap::from([("data".to_string(), VolumeBacking::Dir(disk.clone()))]);
    let facts = PodFacts {
        name: "chunkserver-1".into(),
        ..PodFacts::default()
    };
    let run = kubelet
        .run_stateful_set_pod(&stateful_set, &facts, &volumes)
        .unwrap();
    assert!(run.init_succeeded(), "{run}");
    assert_eq!(
        fs::read_to_string(disk.join("owner")).unwrap(),
        "chunkserver-1\n"
    );
    assert_eq!(
        run.read("chunkserver", "/curvebs/chunkserver/data/owner")
            .unwrap(),
        "chunkserver-1\n"
    );
    let missing = kubelet.run_stateful_set_pod(&stateful_set, &facts, &BTreeMap::new());
    let message = missing.unwrap_err().to_string();
    assert!(message.contains("\"data\""), "{message}");

    let job: k8s_openapi::api::batch::v1::Job = serde_json::from_value(json!({
        "metadata": {"name": "physical-pool"},
        "spec": {"template": {"spec": {
            "restartPolicy": "Never",
            "containers": [sh("pool", "echo '{}' > /tmp/map.json; /curvebs/tools/sbin/curvebs-tool -op=create_physicalpool -cluster_map=/tmp/map.json -mds_addr=10.0.0.1:6700,10.0.0.2:6700")],
        }}},
    }))
    .unwrap();
    let kubelet = kubelet.run_main_containers(true);
    let run = kubelet.run_job_pod(&job, &facts, &BTreeMap::new()).unwrap();
    assert_eq!(*run.status("pool"), ContainerStatus::Exited(0), "{run}");
    assert_eq!(run.invocations_of("curvebs-tool")[0].container, "pool");
}

#[test]
fn the_termination_log_is_a_file_the_kubelet_reads_back() {
    let (_tmp, kubelet) = kubelet("v1.2.6");
    let mut pod = init_pod(
        vec![
            sh(
                "written",
                "echo 'first words' > /dev/termination-log; echo output; exit 3",
            ),
            sh("elsewhere", "echo 'own path' > /tmp/why; exit 0"),
        ],
        json!([]),
    );
    pod.init_containers.as_mut().unwrap()[1].termination_message_path = Some("/tmp/why".into());
    let run = run_pod(&kubelet, &pod, &facts());
    assert_eq!(*run.status("written"), ContainerStatus::Exited(3), "{run}");
    assert_eq!(run.termination_message("written"), "first words\n");
    // The first init container failed: the second never ran, its message is empty.
    assert_eq!(run.termination_message("elsewhere"), "");

    let mut pod = init_pod(
        vec![
            sh("elsewhere", "echo 'own path' > /tmp/why; exit 0"),
            sh("silent", "echo 'line 1'; echo 'line 2' >&2; exit 1"),
        ],
        json!([]),
    );
    let init = pod.init_containers.as_mut().unwrap();
    init[0].termination_message_path = Some("/tmp/why".into());
    init[1].termination_message_policy = Some("FallbackToLogsOnError".into());
    let run = run_pod(&kubelet, &pod, &facts());
    assert_eq!(run.termination_message("elsewhere"), "own path\n", "{run}");
    // Nothing written, failed, FallbackToLogsOnError: the end of its output.
    assert_eq!(run.termination_message("silent"), "line 1\nline 2", "{run}");

    let mut pod = init_pod(vec![sh("quiet", "echo 'ignored'; exit 1")], json!([]));
    pod.init_containers.as_mut().unwrap()[0].termination_message_policy = Some("File".into());
    let run = run_pod(&kubelet, &pod, &facts());
    assert_eq!(run.termination_message("quiet"), "", "{run}");
}

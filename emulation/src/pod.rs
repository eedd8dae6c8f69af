//! The emulated kubelet: it runs a pod's containers on the emulated image and tells what came
//! of them.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Container, PodSpec, VolumeMount};
use tempfile::TempDir;

use crate::env::{ConfigError, container_env};
use crate::error::{EmulationError, IoContext};
use crate::expansion::expand_with;
use crate::holder::{HOST_PATH, Holder};
use crate::image::ImageFiles;
use crate::mounts::{ContainerView, Mount, MountSource, absolute, parts};
use crate::records::{self, Invocation};
use crate::rootfs::{self, HostIdentity, IMAGE_ENV};
use crate::runner::{self, Launch};
use crate::volumes::{self, PodVolume, VolumeBacking, Volumes};

/// Environment variable: set to `1` to keep each pod's files (printed on stderr) for a look.
pub const KEEP_ENV: &str = "CURVE_EMULATION_KEEP";

/// The image's ENTRYPOINT, run when a container has no `command`.
pub const IMAGE_ENTRYPOINT: &str = "/entrypoint.sh";

/// How long a container may run by default before it is killed.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// `terminationMessagePath` when the container names none (the API server's default).
pub const DEFAULT_TERMINATION_MESSAGE_PATH: &str = "/dev/termination-log";
/// The kubelet's bounds on a termination message (pkg/kubelet/container/runtime.go:
/// `MaxContainerTerminationMessageLength`, and for the fallback to the logs
/// `MaxContainerTerminationMessageLogLength` and `MaxContainerTerminationMessageLogLines`).
const TERMINATION_MESSAGE_BYTES: usize = 4096;
const TERMINATION_LOG_BYTES: usize = 2048;
const TERMINATION_LOG_LINES: usize = 80;

/// What the API server and the scheduler would have decided about the pod, and the objects it
/// may refer to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodFacts {
    /// `metadata.name`; also the hostname (unless `spec.hostname` is set or the pod uses the
    /// host's network, where it is the node name).
    pub name: String,
    /// `metadata.namespace`.
    pub namespace: String,
    /// `spec.nodeName`.
    pub node_name: String,
    /// `status.podIP`.
    pub pod_ip: String,
    /// `status.hostIP`.
    pub host_ip: String,
    /// ConfigMaps of the namespace: name → data.
    pub config_maps: BTreeMap<String, BTreeMap<String, String>>,
    /// Secrets of the namespace: name → data (decoded).
    pub secrets: BTreeMap<String, BTreeMap<String, String>>,
}

impl Default for PodFacts {
    /// Pod `pod` in namespace `default` on node `node-1`, pod IP 10.0.0.2, host IP 10.0.0.1,
    /// no ConfigMaps and no Secrets.
    fn default() -> PodFacts {
        PodFacts {
            name: "pod".into(),
            namespace: "default".into(),
            node_name: "node-1".into(),
            pod_ip: "10.0.0.2".into(),
            host_ip: "10.0.0.1".into(),
            config_maps: BTreeMap::new(),
            secrets: BTreeMap::new(),
        }
    }
}

/// What became of a container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ContainerStatus {
    /// Not started: main containers unless asked for, and everything after a failed init
    /// container or a failed volume mount.
    NotRun,
    /// It ran and exited with this code (128 + N when killed by signal N).
    Exited(i32),
    /// It was killed after running this long.
    TimedOut(Duration),
    /// It could not be started, and why: the kubelet's CreateContainerConfigError (a missing
    /// ConfigMap, Secret or key), a bad subPath, an executable not found...
    FailedToStart(String),
}

impl ContainerStatus {
    /// It ran and exited 0.
    pub fn succeeded(&self) -> bool {
        *self == ContainerStatus::Exited(0)
    }

    /// The exit code, if it ran to its end.
    pub fn exit_code(&self) -> Option<i32> {
        match self {
            ContainerStatus::Exited(code) => Some(*code),
            _ => None,
        }
    }
}

/// Whether a container is an init container.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContainerKind {
    /// From `initContainers`: run in order before the others, each to its end.
    Init,
    /// From `containers`.
    Main,
}

/// One container of a [`PodRun`].
#[derive(Clone, Debug)]
pub struct ContainerRun {
    /// Its name.
    pub name: String,
    /// Init or main container.
    pub kind: ContainerKind,
    /// What became of it.
    pub status: ContainerStatus,
    /// What it wrote to stdout.
    pub stdout: String,
    /// What it wrote to stderr.
    pub stderr: String,
    /// Its command line as the runtime gets it: `command` (or the image's ENTRYPOINT) and
    /// `args`, with `$(VAR)` expanded.
    pub command_line: Vec<String>,
    /// Its process environment: the image's, `HOSTNAME`, then the container's own.
    pub env: BTreeMap<String, String>,
    /// The host file mounted at its `terminationMessagePath`, as the kubelet mounts one.
    termination_log: PathBuf,
    /// `terminationMessagePolicy: FallbackToLogsOnError`.
    fallback_to_logs: bool,
    start_problem: Option<String>,
    working_dir: String,
    hostname: String,
    rootfs: PathBuf,
    mounts: Vec<Mount>,
}

/// Runs pods' containers on the emulated Curve image. See the crate documentation.
#[derive(Clone, Debug)]
pub struct Kubelet {
    image: ImageFiles,
    init_timeout: Duration,
    main_timeout: Duration,
    run_main_containers: bool,
    chunkservers: (u32, u32),
}

impl Kubelet {
    /// A kubelet for the given image files: 30 s per container, main containers not run,
    /// `curve_ops_tool chunkserver-status` reporting no ChunkServers.
    pub fn new(image: ImageFiles) -> Kubelet {
        Kubelet {
            image,
            init_timeout: DEFAULT_TIMEOUT,
            main_timeout: DEFAULT_TIMEOUT,
            run_main_containers: false,
            chunkservers: (0, 0),
        }
    }

    /// How long an init container may run before it is killed ([`ContainerStatus::TimedOut`]).
    pub fn init_timeout(mut self, timeout: Duration) -> Kubelet {
        self.init_timeout = timeout;
        self
    }

    /// How long a main container may run before it is killed.
    pub fn main_timeout(mut self, timeout: Duration) -> Kubelet {
        self.main_timeout = timeout;
        self
    }

    /// Also run the main containers (one after the other, in order) once the init containers
    /// succeeded: for Job pods whose container is a script calling the tools.
    pub fn run_main_containers(mut self, run: bool) -> Kubelet {
        self.run_main_containers = run;
        self
    }

    /// What `curve_ops_tool chunkserver-status` reports: `total` ChunkServers, `online` online.
    pub fn chunkservers(mut self, total: u32, online: u32) -> Kubelet {
        self.chunkservers = (total, online);
        self
    }

    /// The image files used.
    pub fn image(&self) -> &ImageFiles {
        &self.image
    }

    /// Runs a pod with this spec. `volumes` backs its persistent volumes, keyed by claim name
    /// or volume name; a volumeMount naming a volume the spec does not have is taken for a
    /// StatefulSet claim template when `volumes` has that name.
    pub fn run_pod(
        &self,
        spec: &PodSpec,
        facts: &PodFacts,
        volumes: &BTreeMap<String, VolumeBacking>,
    ) -> Result<PodRun, EmulationError> {
        self.run(spec, &[], facts, volumes)
    }

    /// Runs a pod of the StatefulSet, whose claim templates are backed by `volumes` under the
    /// template names (or the claim names `<template>-<pod>`).
    pub fn run_stateful_set_pod(
        &self,
        stateful_set: &StatefulSet,
        facts: &PodFacts,
        volumes: &BTreeMap<String, VolumeBacking>,
    ) -> Result<PodRun, EmulationError> {
        let spec = stateful_set.spec.as_ref();
        let pod_spec = spec
            .and_then(|s| s.template.spec.as_ref())
            .ok_or_else(|| EmulationError::InvalidPod("StatefulSet without a pod spec".into()))?;
        let templates: Vec<String> = spec
            .and_then(|s| s.volume_claim_templates.as_ref())
            .into_iter()
            .flatten()
            .filter_map(|t| t.metadata.name.clone())
            .collect();
        self.run(pod_spec, &templates, facts, volumes)
    }

    /// Runs the pod of the Job.
    pub fn run_job_pod(
        &self,
        job: &Job,
        facts: &PodFacts,
        volumes: &BTreeMap<String, VolumeBacking>,
    ) -> Result<PodRun, EmulationError> {
        let pod_spec = job
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .ok_or_else(|| EmulationError::InvalidPod("Job without a pod spec".into()))?;
        self.run(pod_spec, &[], facts, volumes)
    }

    fn run(
        &self,
        spec: &PodSpec,
        explicit_templates: &[String],
        facts: &PodFacts,
        backings: &BTreeMap<String, VolumeBacking>,
    ) -> Result<PodRun, EmulationError> {
        preflight(backings)?;
        let templates = claim_templates(spec, explicit_templates, backings)?;
        let dir = tempfile::Builder::new()
            .prefix(&format!("curve-emulation-{}-", facts.name))
            .tempdir()
            .doing(|| "creating the pod's directory".into())?;
        let paths = PodPaths::new(dir.path());
        paths.create(self.chunkservers)?;
        rootfs::build_usr_layer(&paths.usr_layer, &self.image)?;
        let (volumes, ext4, failed_mount) =
            match volumes::set_up(spec, &templates, facts, backings, dir.path())? {
                Volumes::Ready { volumes, ext4 } => (volumes, ext4, None),
                Volumes::FailedMount(why) => (Vec::new(), Vec::new(), Some(why)),
            };
        let holder = Holder::start(&ext4, &paths.holder_log)?;
        let setup = PodSetup {
            spec,
            facts,
            volumes,
            mounted: failed_mount.is_none(),
            ns_root: holder.ns_root(),
            paths,
        };
        let mut run = PodRun {
            name: facts.name.clone(),
            containers: Vec::new(),
            failed_mount,
            invocations: Vec::new(),
            ns_root: setup.ns_root.clone(),
            holder: Some(holder),
            dir: Some(dir),
        };
        let init = spec.init_containers.iter().flatten();
        let init = init.map(|c| (ContainerKind::Init, c));
        let main = spec.containers.iter().map(|c| (ContainerKind::Main, c));
        for (kind, container) in init.chain(main) {
            run.containers.push(self.prepare(&setup, kind, container)?);
        }
        if setup.mounted {
            self.execute(&mut run, &setup.paths)?;
        }
        Ok(run)
    }

    /// Init containers in order, stopping at the first that does not succeed; then the main
    /// containers if asked.
    fn execute(&self, run: &mut PodRun, paths: &PodPaths) -> Result<(), EmulationError> {
        for index in 0..run.containers.len() {
            let kind = run.containers[index].kind;
            if kind == ContainerKind::Main && !self.run_main_containers {
                continue;
            }
            let timeout = match kind {
                ContainerKind::Init => self.init_timeout,
                ContainerKind::Main => self.main_timeout,
            };
            run.start(index, timeout, paths)?;
            if kind == ContainerKind::Init && !run.containers[index].status.succeeded() {
                break;
            }
        }
        Ok(())
    }

    /// Everything about a container that is known before it starts.
    fn prepare(
        &self,
        setup: &PodSetup,
        kind: ContainerKind,
        container: &Container,
    ) -> Result<ContainerRun, EmulationError> {
        let (spec, facts) = (setup.spec, setup.facts);
        if kind == ContainerKind::Init && container.restart_policy.as_deref() == Some("Always") {
            return Err(EmulationError::Unsupported(format!(
                "init container {:?} is a sidecar (restartPolicy: Always)",
                container.name
            )));
        }
        let hostname = hostname(spec, facts);
        let rootfs = setup.paths.containers.join(&container.name).join("rootfs");
        let identity = HostIdentity {
            hostname: &hostname,
            ip: if spec.host_network == Some(true) {
                &facts.host_ip
            } else {
                &facts.pod_ip
            },
        };
        rootfs::build(&rootfs, &self.image, &identity)?;
        let (container_env, start_problem) = match container_env(container, spec, facts)? {
            Ok(env) => (env, None),
            Err(ConfigError(why)) => (
                BTreeMap::new(),
                Some(format!("CreateContainerConfigError: {why}")),
            ),
        };
        let command_line = command_line(container, &container_env);
        let termination_log = setup
            .paths
            .containers
            .join(&container.name)
            .join("termination-log");
        fs::write(&termination_log, "")
            .doing(|| format!("creating {}", termination_log.display()))?;
        let mounts = if setup.mounted {
            plan_mounts(container, setup, &rootfs, &container_env, &termination_log)?
        } else {
            fixed_mounts(&setup.paths)
        };
        Ok(ContainerRun {
            name: container.name.clone(),
            kind,
            status: ContainerStatus::NotRun,
            stdout: String::new(),
            stderr: String::new(),
            command_line,
            env: process_env(&hostname, container_env),
            termination_log,
            fallback_to_logs: container.termination_message_policy.as_deref()
                == Some("FallbackToLogsOnError"),
            start_problem,
            working_dir: container.working_dir.clone().unwrap_or_else(|| "/".into()),
            hostname,
            rootfs,
            mounts,
        })
    }
}

/// The root check and the host programs, before anything is created.
fn preflight(backings: &BTreeMap<String, VolumeBacking>) -> Result<(), EmulationError> {
    // SAFETY: geteuid(2) cannot fail and touches no memory.
    let uid = unsafe { libc::geteuid() };
    if uid != 0 {
        return Err(EmulationError::NotRoot { uid });
    }
    let mut programs = vec![
        "unshare", "nsenter", "chroot", "mount", "realpath", "getopt", "stat", "hostname",
    ];
    if backings
        .values()
        .any(|b| matches!(b, VolumeBacking::Ext4 { .. }))
    {
        programs.extend(["mkfs.ext4", "e2fsck", "resize2fs", "losetup"]);
    }
    for program in programs {
        let found = HOST_PATH
            .split(':')
            .any(|dir| Path::new(dir).join(program).exists());
        if !found {
            return Err(EmulationError::MissingHostProgram {
                program: program.into(),
                why: format!("not found in {HOST_PATH}"),
            });
        }
    }
    rootfs::check_host()
}

/// Claim templates: the given ones, plus volumeMounts naming a volume the spec lacks but
/// `backings` has (a StatefulSet's template spec mounts its claim templates that way).
fn claim_templates(
    spec: &PodSpec,
    explicit: &[String],
    backings: &BTreeMap<String, VolumeBacking>,
) -> Result<Vec<String>, EmulationError> {
    let mut templates = explicit.to_vec();
    let has_volume = |name: &str| spec.volumes.iter().flatten().any(|v| v.name == name);
    let all_containers = spec
        .init_containers
        .iter()
        .flatten()
        .chain(&spec.containers);
    for container in all_containers {
        for mount in container.volume_mounts.iter().flatten() {
            if has_volume(&mount.name) || templates.contains(&mount.name) {
                continue;
            }
            if !backings.contains_key(&mount.name) {
                return Err(EmulationError::InvalidPod(format!(
                    "container {:?} mounts volume {:?}, which the pod does not have (for a StatefulSet claim template, pass a backing under its name)",
                    container.name, mount.name
                )));
            }
            templates.push(mount.name.clone());
        }
    }
    Ok(templates)
}

/// The node's name with host networking; else `spec.hostname` or the pod name, cut to 63
/// characters as the kubelet does.
fn hostname(spec: &PodSpec, facts: &PodFacts) -> String {
    if spec.host_network == Some(true) {
        return facts.node_name.clone();
    }
    let name = spec.hostname.clone().unwrap_or_else(|| facts.name.clone());
    if name.len() <= 63 {
        return name;
    }
    name[..63].trim_end_matches(['-', '.']).to_string()
}

/// `command` (or the image's ENTRYPOINT, the image has no CMD) and `args`, expanded with the
/// container's variables as the kubelet does.
fn command_line(container: &Container, env: &BTreeMap<String, String>) -> Vec<String> {
    let entrypoint = match &container.command {
        Some(command) if !command.is_empty() => command.clone(),
        _ => vec![IMAGE_ENTRYPOINT.to_string()],
    };
    entrypoint
        .iter()
        .chain(container.args.iter().flatten())
        .map(|word| expand_with(word, env))
        .collect()
}

/// The image's ENV, then HOSTNAME (the runtime sets it), then the container's variables.
fn process_env(
    hostname: &str,
    container_env: BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = IMAGE_ENV
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    env.insert("HOSTNAME".into(), hostname.to_string());
    env.extend(container_env);
    env
}

/// What every container gets: the host's /usr under the image's extra files, /proc, /dev,
/// and the emulation's shared directory.
fn fixed_mounts(paths: &PodPaths) -> Vec<Mount> {
    vec![
        Mount {
            target: "/usr".into(),
            source: MountSource::Layers(vec![paths.usr_layer.clone(), PathBuf::from("/usr")]),
            read_only: true,
        },
        Mount {
            target: "/proc".into(),
            source: MountSource::Proc,
            read_only: false,
        },
        Mount {
            target: "/dev".into(),
            source: MountSource::Dev,
            read_only: false,
        },
        Mount {
            target: "/emulation".into(),
            source: MountSource::Bind {
                path: paths.emulation.clone(),
                volume_root: None,
            },
            read_only: false,
        },
    ]
}

/// The container's mounts, in the order a runtime makes them (fewest path components first);
/// each target is resolved through the image root and the mounts before it. The termination
/// log comes right after /dev, which holds it by default (pkg/kubelet/kuberuntime/
/// kuberuntime_container.go, `makeMounts`: an empty file of the pod's directory mounted at
/// `terminationMessagePath`).
fn plan_mounts(
    container: &Container,
    setup: &PodSetup,
    rootfs: &Path,
    env: &BTreeMap<String, String>,
    termination_log: &Path,
) -> Result<Vec<Mount>, EmulationError> {
    let mut mounts = fixed_mounts(&setup.paths);
    let path = container
        .termination_message_path
        .as_deref()
        .unwrap_or(DEFAULT_TERMINATION_MESSAGE_PATH);
    let target = ContainerView::new(&setup.ns_root, rootfs, &mounts)
        .resolve(path)
        .doing(|| {
            format!(
                "resolving terminationMessagePath {path} of container {:?}",
                container.name
            )
        })?;
    mounts.push(Mount {
        target: absolute(&target),
        source: MountSource::Bind {
            path: termination_log.to_path_buf(),
            volume_root: None,
        },
        read_only: false,
    });
    let mut requested: Vec<&VolumeMount> = container.volume_mounts.iter().flatten().collect();
    requested.sort_by_key(|m| parts(&m.mount_path).len());
    for request in requested {
        let volume = setup
            .volumes
            .iter()
            .find(|v| v.name == request.name)
            .ok_or_else(|| {
                EmulationError::InvalidPod(format!(
                    "container {:?} mounts volume {:?}, which the pod does not have",
                    container.name, request.name
                ))
            })?;
        let source = match sub_path(container, request, env)? {
            Some(sub) => MountSource::Bind {
                path: volume.dir.join(sub),
                volume_root: Some(volume.dir.clone()),
            },
            None => MountSource::Bind {
                path: volume.dir.clone(),
                volume_root: None,
            },
        };
        let view = ContainerView::new(&setup.ns_root, rootfs, &mounts);
        let target = view.resolve(&request.mount_path).doing(|| {
            format!(
                "resolving mountPath {} of container {:?}",
                request.mount_path, container.name
            )
        })?;
        mounts.push(Mount {
            target: absolute(&target),
            source,
            read_only: request.read_only == Some(true) || volume.read_only,
        });
    }
    Ok(mounts)
}

/// `subPath`, or `subPathExpr` expanded with the container's variables; both must be relative
/// without `..` (the API server and the kubelet check).
fn sub_path(
    container: &Container,
    request: &VolumeMount,
    env: &BTreeMap<String, String>,
) -> Result<Option<String>, EmulationError> {
    let sub = match (&request.sub_path, &request.sub_path_expr) {
        (Some(sub), None) => sub.clone(),
        (None, Some(expr)) => expand_with(expr, env),
        (None, None) => return Ok(None),
        (Some(_), Some(_)) => {
            return Err(EmulationError::InvalidPod(format!(
                "container {:?}: volumeMount {} has both subPath and subPathExpr",
                container.name, request.mount_path
            )));
        }
    };
    if sub.is_empty() {
        return Ok(None);
    }
    if sub.starts_with('/') || sub.split('/').any(|p| p == "..") {
        return Err(EmulationError::InvalidPod(format!(
            "container {:?}: subPath {sub:?} must be relative and must not contain '..'",
            container.name
        )));
    }
    Ok(Some(sub))
}

/// What the containers of a pod share, once its volumes are set up.
struct PodSetup<'a> {
    spec: &'a PodSpec,
    facts: &'a PodFacts,
    volumes: Vec<PodVolume>,
    /// False when the volumes failed to mount: then no container runs.
    mounted: bool,
    ns_root: PathBuf,
    paths: PodPaths,
}

/// The pod's directory on the host.
struct PodPaths {
    containers: PathBuf,
    emulation: PathBuf,
    records: PathBuf,
    usr_layer: PathBuf,
    holder_log: PathBuf,
}

impl PodPaths {
    fn new(dir: &Path) -> PodPaths {
        PodPaths {
            containers: dir.join("containers"),
            emulation: dir.join("emulation"),
            records: dir.join("emulation/record"),
            usr_layer: dir.join("usr-layer"),
            holder_log: dir.join("namespace.log"),
        }
    }

    fn create(&self, (total, online): (u32, u32)) -> Result<(), EmulationError> {
        for dir in [&self.containers, &self.records, &self.usr_layer] {
            fs::create_dir_all(dir).doing(|| format!("creating {}", dir.display()))?;
        }
        let counts = self.emulation.join("chunkservers");
        fs::write(&counts, format!("{total} {online}\n"))
            .doing(|| format!("writing {}", counts.display()))
    }
}

/// A pod that ran: its containers' statuses and output, and their file systems, which stay
/// readable until it is dropped (then everything is unmounted and removed).
pub struct PodRun {
    name: String,
    containers: Vec<ContainerRun>,
    failed_mount: Option<String>,
    invocations: Vec<Invocation>,
    ns_root: PathBuf,
    holder: Option<Holder>,
    dir: Option<TempDir>,
}

impl PodRun {
    /// Every container, init containers first, in spec order.
    pub fn containers(&self) -> &[ContainerRun] {
        &self.containers
    }

    /// The container of that name. Panics (listing the names) if there is none.
    pub fn container(&self, name: &str) -> &ContainerRun {
        self.find(name).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The status of container `name` (panics if there is none).
    pub fn status(&self, name: &str) -> &ContainerStatus {
        &self.container(name).status
    }

    /// What container `name` wrote to stdout (panics if there is none).
    pub fn stdout(&self, name: &str) -> &str {
        &self.container(name).stdout
    }

    /// What container `name` wrote to stderr (panics if there is none).
    pub fn stderr(&self, name: &str) -> &str {
        &self.container(name).stderr
    }

    /// The message the kubelet would report for container `name` once it ended (panics if there
    /// is none): what it wrote to its termination log (the last 4096 bytes); when that is empty,
    /// it failed and its policy is `FallbackToLogsOnError`, the end of its output (80 lines, at
    /// most 2048 bytes; stdout then stderr, the emulation keeps them apart); else nothing
    /// (kuberuntime_container.go, `getTerminationMessage` and its caller).
    pub fn termination_message(&self, name: &str) -> String {
        let container = self.container(name);
        let written = fs::read(&container.termination_log).unwrap_or_default();
        if !written.is_empty() {
            let start = written.len().saturating_sub(TERMINATION_MESSAGE_BYTES);
            return String::from_utf8_lossy(&written[start..]).into_owned();
        }
        let failed = matches!(container.status, ContainerStatus::Exited(code) if code != 0)
            || matches!(container.status, ContainerStatus::TimedOut(_));
        if !(container.fallback_to_logs && failed) {
            return String::new();
        }
        let output = format!("{}{}", container.stdout, container.stderr);
        let tail = last_lines(&output, TERMINATION_LOG_LINES).join("\n");
        let start = tail.len().saturating_sub(TERMINATION_LOG_BYTES);
        let start = (start..=tail.len())
            .find(|i| tail.is_char_boundary(*i))
            .unwrap_or(tail.len());
        tail[start..].to_string()
    }

    /// The expanded command line of container `name` (panics if there is none).
    pub fn command_line(&self, name: &str) -> Vec<String> {
        self.container(name).command_line.clone()
    }

    /// The process environment of container `name` (panics if there is none).
    pub fn env(&self, name: &str) -> &BTreeMap<String, String> {
        &self.container(name).env
    }

    /// Why the pod's volumes could not be mounted (then no container ran).
    pub fn failed_mount(&self) -> Option<&str> {
        self.failed_mount.as_deref()
    }

    /// The init container that stopped the pod, if one did.
    pub fn failed_init_container(&self) -> Option<&ContainerRun> {
        self.containers.iter().find(|c| {
            c.kind == ContainerKind::Init
                && !c.status.succeeded()
                && c.status != ContainerStatus::NotRun
        })
    }

    /// The volumes mounted and every init container exited 0.
    pub fn init_succeeded(&self) -> bool {
        self.failed_mount.is_none()
            && self
                .containers
                .iter()
                .filter(|c| c.kind == ContainerKind::Init)
                .all(|c| c.status.succeeded())
    }

    /// Every call of a stand-in, in container order.
    pub fn invocations(&self) -> &[Invocation] {
        &self.invocations
    }

    /// The calls of one stand-in (`curve_format`, `curvebs-tool`, `curve_ops_tool`,
    /// `entrypoint.sh`).
    pub fn invocations_of(&self, binary: &str) -> Vec<&Invocation> {
        self.invocations
            .iter()
            .filter(|i| i.binary == binary)
            .collect()
    }

    /// Where `path`, as container `container` sees it (through its mounts and symlinks), is
    /// for this process. Valid while the run lives.
    pub fn host_path(&self, container: &str, path: &str) -> io::Result<PathBuf> {
        self.view(container)?.host_path(path)
    }

    /// The content of file `path` as container `container` sees it.
    pub fn read(&self, container: &str, path: &str) -> io::Result<String> {
        fs::read_to_string(self.host_path(container, path)?)
    }

    /// The bytes of file `path` as container `container` sees it.
    pub fn read_bytes(&self, container: &str, path: &str) -> io::Result<Vec<u8>> {
        fs::read(self.host_path(container, path)?)
    }

    /// Whether `path` exists for container `container`.
    pub fn exists(&self, container: &str, path: &str) -> bool {
        self.host_path(container, path)
            .is_ok_and(|p| fs::symlink_metadata(p).is_ok())
    }

    /// The names in directory `dir` of container `container`, sorted (mount points included).
    pub fn list(&self, container: &str, dir: &str) -> io::Result<Vec<String>> {
        self.view(container)?.list(dir)
    }

    /// The pod's directory on the host (image roots, volumes, logs, records).
    pub fn dir(&self) -> &Path {
        self.dir
            .as_ref()
            .map(TempDir::path)
            .expect("the directory lives as long as the run")
    }

    fn find(&self, name: &str) -> io::Result<&ContainerRun> {
        self.containers
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| {
                let names: Vec<&str> = self.containers.iter().map(|c| c.name.as_str()).collect();
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!(
                        "pod {} has no container {name:?} (it has {})",
                        self.name,
                        names.join(", ")
                    ),
                )
            })
    }

    fn view(&self, container: &str) -> io::Result<ContainerView> {
        let c = self.find(container)?;
        Ok(ContainerView::new(&self.ns_root, &c.rootfs, &c.mounts))
    }

    /// Runs container `index` and records what came of it.
    fn start(
        &mut self,
        index: usize,
        timeout: Duration,
        paths: &PodPaths,
    ) -> Result<(), EmulationError> {
        let holder_pid = self.holder.as_ref().expect("alive while running").pid();
        let view = self
            .view(&self.containers[index].name.clone())
            .expect("known");
        let container = &self.containers[index];
        if let Some(problem) = &container.start_problem {
            self.containers[index].status = ContainerStatus::FailedToStart(problem.clone());
            return Ok(());
        }
        let before = records::snapshot(&paths.records);
        let outcome = runner::run(
            &Launch {
                dir: &paths.containers.join(&container.name),
                rootfs: &container.rootfs,
                mounts: &container.mounts,
                hostname: &container.hostname,
                working_dir: &container.working_dir,
                env: &container.env,
                argv: &container.command_line,
                holder_pid,
                timeout,
            },
            &view,
        )?;
        let name = container.name.clone();
        self.invocations
            .extend(records::new_since(&paths.records, &before, &name));
        let container = &mut self.containers[index];
        container.status = outcome.status;
        container.stdout = outcome.stdout;
        container.stderr = outcome.stderr;
        Ok(())
    }
}

impl Drop for PodRun {
    fn drop(&mut self) {
        // The namespace first: nothing may be mounted from the directory when it is removed.
        drop(self.holder.take());
        let Some(dir) = self.dir.take() else {
            return;
        };
        if std::env::var(KEEP_ENV).is_ok_and(|v| v == "1") {
            let kept = dir.keep();
            eprintln!(
                "curve-image-emulation: kept pod {} at {}",
                self.name,
                kept.display()
            );
        }
    }
}

impl fmt::Display for PodRun {
    /// A report of every container, for assertion messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "pod {}:", self.name)?;
        if let Some(why) = &self.failed_mount {
            writeln!(f, "  volumes failed to mount: {why}")?;
        }
        for c in &self.containers {
            let kind = match c.kind {
                ContainerKind::Init => "init container",
                ContainerKind::Main => "container",
            };
            writeln!(f, "  {kind} {:?}: {:?}", c.name, c.status)?;
            writeln!(f, "    command: {:?}", c.command_line)?;
            for (stream, text) in [("stdout", &c.stdout), ("stderr", &c.stderr)] {
                if !text.trim().is_empty() {
                    writeln!(f, "    {stream}:")?;
                    for line in last_lines(text, 20) {
                        writeln!(f, "      {line}")?;
                    }
                }
            }
        }
        Ok(())
    }
}

impl fmt::Debug for PodRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

fn last_lines(text: &str, count: usize) -> Vec<&str> {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(count)..].to_vec()
}

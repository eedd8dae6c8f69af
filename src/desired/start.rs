//! What runs in a daemon's container before Curve's own entrypoint (issue 28, items 1 and 6),
//! and the ChunkServer's readiness check (item 5). POSIX sh (the image's dash) and mawk only.

/// Where a ChunkServer's data volume is mounted.
const CHUNKSERVER_DATA_DIR: &str = "/curvebs/chunkserver/data";
/// The file, on the data volume, naming the node and IP the ChunkServer first started from.
pub const IDENTITY_FILE: &str = "/curvebs/chunkserver/data/curve-operator.identity";
/// Bytes of one chunk file pool file (16 MiB chunk + 4 KiB meta page): the most files, and so
/// open chunk files, a volume can hold is its size over this.
const POOL_FILE_BYTES: u64 = crate::validate::capacity::POOL_FILE_BYTES;
/// Open files a ChunkServer needs beyond one per chunk: sockets (clients, peers, the MDS),
/// raft meta and snapshot files, logs.
pub const CHUNKSERVER_OPEN_FILES_MARGIN: u64 = 65536;
/// Open files the MDS needs: a socket per client and ChunkServer, etcd, logs. Curve names no
/// figure; curveadm's containers get the Docker daemon's 1048576.
pub const MDS_OPEN_FILES: u64 = 65536;
/// Where the user guide states the node requirements the refusals name.
pub const NODE_REQUIREMENTS_DOC: &str = "docs/user/nodes.md";

/// What a start script's refusal of `reason` leaves in the termination log, which Kubernetes
/// shows as the container's last termination message.
pub fn refusal_message(reason: &str) -> String {
    format!("{REFUSAL_PREFIX}{reason}")
}

/// The shell function every start script refuses with: the reason goes to stderr and to the
/// termination log.
fn refuse_function() -> String {
    format!(
        "refuse() {{\n  \
           echo \"$0: {REFUSAL_PREFIX}$1\" >&2\n  \
           echo \"{REFUSAL_PREFIX}$1\" 2>/dev/null >/dev/termination-log || true\n  \
           exit 1\n\
         }}\n"
    )
}

/// Checks the hard limit of open files against `$need` and raises the soft limit to it.
/// A ChunkServer keeps every chunk file it uses open (CSChunkFile::Open,
/// src/chunkserver/datastore/chunkserver_chunkfile.cpp; CSDataStore::Initialize loads every
/// chunk at start, chunkserver_datastore.cpp), and a container gets its runtime's limits:
/// containerd 2.x no longer raises them, a soft limit of 1024 is common. Curve's own playbook
/// refuses hosts below 650000 (curve-ansible/common_tasks/check_chunkserver.yml:39-42), for a
/// whole host; here the need is one pod's.
fn open_files_check(daemon: &str, need_reason: &str) -> String {
    format!(
        "hard=$(ulimit -H -n)\n\
         if [ \"$hard\" != unlimited ] && [ \"$hard\" -lt \"$need\" ]; then\n  \
           refuse \"the open files hard limit is $hard and this {daemon} needs $need ({need_reason}): node $NODE_NAME must give containers a hard limit of at least $need open files (node requirements: {NODE_REQUIREMENTS_DOC})\"\n\
         fi\n\
         soft=$(ulimit -S -n)\n\
         if [ \"$soft\" != unlimited ] && [ \"$soft\" -lt \"$need\" ]; then ulimit -S -n \"$need\"; fi\n\
         echo \"$0: open files: soft limit $(ulimit -S -n), hard limit $hard, {daemon} needs $need\"\n"
    )
}

/// glog's `-max_log_size`, in MiB: the size at which Curve's glog closes a log file and opens
/// the next (`LogFileObject::Write`; glog 4cc89c9, WORKSPACE:60-68, whose default is 1800).
/// Small enough that the cleanup can free space in steps well under the budget.
pub const LOG_FILE_MIB: u64 = 128;
/// What the cleanup keeps of a daemon's log dir: the newest files whose sizes sum to at most
/// this, the newest one always. Eight files of [`LOG_FILE_MIB`] — days of INFO logging.
pub const LOG_KEEP_MIB: u64 = 1024;
/// Seconds between two cleanup passes.
pub const LOG_CLEANUP_SECONDS: u64 = 60;
/// The log emptyDir's `sizeLimit`, in MiB: the kubelet evicts a pod past it, so it stays well
/// above what the cleanup leaves ([`LOG_KEEP_MIB`]); the difference is what a daemon may write
/// between two passes (about 17 MiB/s for a minute) before eviction could come first.
pub const LOG_VOLUME_LIMIT_MIB: u64 = 2048;
// The limit leaves at least the budget again above it, and the budget holds several files.
const _: () = assert!(LOG_VOLUME_LIMIT_MIB >= 2 * LOG_KEEP_MIB && LOG_KEEP_MIB >= 4 * LOG_FILE_MIB);

/// `trim_logs DIR`: deletes the oldest regular files of DIR until the rest sum to at most
/// [`LOG_KEEP_MIB`], never the newest (the file glog writes; the `<program>.INFO` symlink is
/// not a regular file). glog never deletes a file it closed, and Curve v1.2.6 sets no other
/// log flag (its own names: `<program>.log.INFO.<date>-<time>.<pid>`, one series, as
/// thirdparties/glog/glog.patch writes every severity into the INFO file). Names have no
/// blanks, so `ls -l`'s last field is the name.
fn trim_logs_function() -> String {
    let keep_kib = LOG_KEEP_MIB * 1024;
    format!(
        "trim_logs() {{
  \
           ls -lt \"$1\" 2>/dev/null | awk -v dir=\"$1\" -v keep={keep_kib} '\n    \
             /^-/ {{ total += int(($5 + 1023) / 1024); if (++files > 1 && total > keep) print dir \"/\" $NF }}' \\\n  \
           | while read -r old; do\n      \
               rm -f \"$old\" && echo \"$0: deleted old log file $old (logs kept within {LOG_KEEP_MIB} MiB)\"\n    \
             done\n\
         }}\n"
    )
}

/// Trims `log_dir` now (what earlier runs left) and then every [`LOG_CLEANUP_SECONDS`] in a
/// background loop, which lives as long as the container: after `exec` it is the daemon's child
/// and the runtime ends it with the container.
fn log_cleanup(log_dir: &str) -> String {
    format!(
        "{}trim_logs {log_dir} || true\n\
         (while :; do sleep {LOG_CLEANUP_SECONDS}; trim_logs {log_dir} || true; done) &\n",
        trim_logs_function(),
    )
}

/// Lets the daemon dump core as curveadm's containers do (`--ulimit core=-1`,
/// internal/task/task/common/create_container.go): the soft limit raised to the hard one the
/// runtime gives. Where a core goes is the node's `kernel.core_pattern`, which no pod can set.
fn core_limit() -> String {
    "ulimit -S -c \"$(ulimit -H -c)\" 2>/dev/null || true\n\
     echo \"$0: core file size limit $(ulimit -S -c)\"\n"
        .to_string()
}

/// A port a daemon binds, for [`port_check`]: the spec field it comes from, and whether the
/// daemon binds it on every address (brpc's dummy server) or on the pod IP only.
pub struct BoundPort<'a> {
    /// The port: a number, or a shell expression (`$CURVE_PORT`).
    pub port: String,
    pub field: &'a str,
    pub every_address: bool,
}

/// `port_taken PORT ADDRESS` succeeds when a socket of the pod's network namespace — the node's,
/// with host networking — listens on PORT where a daemon binding ADDRESS (the pod IP, or `any`)
/// would collide: on every address, on that IP, or anywhere for `any`. It reads
/// `/proc/net/tcp{,6}` (state `0A` is LISTEN; IPv4 addresses are the 32-bit word in host order,
/// little-endian on x86-64 and arm64), as the image has no `ss`.
fn port_taken_function() -> String {
    "port_taken() {\n  \
       cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk -v port=\"$1\" -v ip=\"$2\" '\n    \
         BEGIN {\n      \
           want = sprintf(\"%04X\", port)\n      \
           if (ip != \"any\") { split(ip, o, \".\"); v4 = sprintf(\"%02X%02X%02X%02X\", o[4], o[3], o[2], o[1]) }\n    \
         }\n    \
         $4 == \"0A\" {\n      \
           split($2, local, \":\")\n      \
           if (local[2] != want) next\n      \
           a = local[1]\n      \
           if (ip == \"any\" || a == \"00000000\" || a == \"00000000000000000000000000000000\" || a == v4 || a == \"0000000000000000FFFF0000\" v4) { found = 1; exit }\n    \
         }\n    \
         END { exit !found }'\n\
     }\n"
        .to_string()
}

/// Refuses to start when another process already listens on one of `ports` (a host etcd on
/// 2379, another pod with host networking): the daemon would exit on its bind error with a
/// message of its own, this says which port, node and spec field.
pub fn port_check(daemon: &str, ports: &[BoundPort]) -> String {
    let checks: String = ports
        .iter()
        .map(|BoundPort { port, field, every_address }| {
            let address = if *every_address { "any" } else { "$POD_IP" };
            let on = if *every_address { "on every address" } else { "on $POD_IP" };
            format!(
                "if port_taken {port} \"{address}\"; then\n  \
                   refuse \"port {port} on node $NODE_NAME is already taken by another process, and this {daemon} must listen on it {on} ({field}): stop what holds it on the node (a host service, another pod with host networking), or give the cluster another port in {field} (node requirements: {NODE_REQUIREMENTS_DOC})\"\n\
                 fi\n"
            )
        })
        .collect();
    format!("{}{checks}", port_taken_function())
}

/// What every daemon's start script does before its own checks: refusals, free ports, core
/// dumps, and the log cleanup when the daemon writes log files.
fn start_common(daemon: &str, ports: &[BoundPort], log_dir: Option<&str>) -> String {
    format!(
        "set -eu\n{}{}{}{}",
        refuse_function(),
        port_check(daemon, ports),
        core_limit(),
        log_dir.map(log_cleanup).unwrap_or_default(),
    )
}

/// etcd's start script: its client and peer ports, then the image's entrypoint. etcd logs to
/// stderr (the image's etcd.conf: `log-outputs: [stderr]`), which the kubelet rotates.
pub fn etcd_start_script(client_port: i32, peer_port: i32) -> String {
    let ports = [
        BoundPort {
            port: client_port.to_string(),
            field: "spec.etcd.clientPort",
            every_address: false,
        },
        BoundPort {
            port: peer_port.to_string(),
            field: "spec.etcd.peerPort",
            every_address: false,
        },
    ];
    format!("{}exec \"$@\"\n", start_common("etcd member", &ports, None))
}

/// The MDS's start script: free ports, cores, log cleanup, open files, then the image's
/// entrypoint. The MDS binds `mds.listen.addr` (the pod IP) and its dummy server on every
/// address (brpc's `StartDummyServerAt`, src/mds/server/mds.cpp).
pub fn mds_start_script(port: i32, dummy_port: i32, log_dir: &str) -> String {
    let ports = [
        BoundPort {
            port: port.to_string(),
            field: "spec.mds.port",
            every_address: false,
        },
        BoundPort {
            port: dummy_port.to_string(),
            field: "spec.mds.dummyPort",
            every_address: true,
        },
    ];
    format!(
        "{}need={MDS_OPEN_FILES}\n{}exec \"$@\"\n",
        start_common("MDS", &ports, Some(log_dir)),
        open_files_check("MDS", "a socket per client and ChunkServer"),
    )
}

/// The ChunkServer's start script: the empty-disk gate, its identity, then open files for every
/// chunk its volume can hold, then the image's entrypoint.
///
/// Curve knows a ChunkServer by ip:port: one that starts from another IP with the id stored
/// on its volume registers nothing new, and the MDS rejects every heartbeat whose address
/// differs from the registered one (`hbChunkserverIpPortNotMatch`,
/// src/mds/heartbeat/heartbeat_manager.cpp:285-296): it stays offline until the MDS
/// re-replicates its copies (30 minutes later). So the first start records the node and IP
/// on the volume, and a start from another IP (a volume that followed its pod to another
/// node) is refused, naming both. The gate ([`empty_disk_gate`]) runs before anything writes
/// to the volume.
///
/// It binds `-chunkServerIp`:`-chunkServerPort` (the pod IP; C:src/chunkserver/chunkserver.cpp:268,360).
pub fn chunkserver_start_script(log_dir: &str) -> String {
    let ports = [BoundPort {
        port: "$CURVE_PORT".to_string(),
        field: "spec.chunkservers.port plus the disk slot",
        every_address: false,
    }];
    format!(
        "{}{}{}\
         if [ -f {IDENTITY_FILE} ]; then\n  \
           node=; ip=\n  \
           read -r node ip < {IDENTITY_FILE} || true\n  \
           if [ \"$ip\" != \"$POD_IP\" ]; then\n    \
             refuse \"{}\"\n  \
           fi\n\
         else\n  \
           echo \"$NODE_NAME $POD_IP\" > {IDENTITY_FILE}.new\n  \
           mv {IDENTITY_FILE}.new {IDENTITY_FILE}\n  \
           echo \"$0: recorded node $NODE_NAME ($POD_IP) as this ChunkServer's home\"\n\
         fi\n\
         need=$(df -P {CHUNKSERVER_DATA_DIR} | awk 'NR == 2 {{ printf \"%d\", int($2 * 1024 / {POOL_FILE_BYTES}) + {CHUNKSERVER_OPEN_FILES_MARGIN} }}')\n\
         {}\
         exec \"$@\"\n",
        start_common("ChunkServer", &ports, Some(log_dir)),
        json_field_function(),
        empty_disk_gate(),
        moved_volume_refusal("$node", "$ip", "$NODE_NAME", "$POD_IP"),
        open_files_check(
            "ChunkServer",
            &format!("one per chunk its volume can hold, plus {CHUNKSERVER_OPEN_FILES_MARGIN}")
        ),
    )
}

/// Why a ChunkServer whose data volume was first used from node `home_node` (`home_ip`) does
/// not start on node `node` (`ip`): the start script refuses with it (given its shell
/// variables), the e2e kubelet with the values it plays.
pub fn moved_volume_refusal(home_node: &str, home_ip: &str, node: &str, ip: &str) -> String {
    format!(
        "this ChunkServer's data was registered from node {home_node} ({home_ip}) and its pod is \
         now on node {node} ({ip}): Curve knows a ChunkServer by ip:port and would reject every \
         heartbeat from the new address; a ChunkServer's data volume must stay on its node \
         (node-local storage, {NODE_REQUIREMENTS_DOC}): move the volume back, or replace this \
         ChunkServer"
    )
}

/// The file a ChunkServer writes once the MDS registered it (its id and token): the
/// `-chunkServerMetaUri` the operator passes, which is the image's `chunkserver.meta_uri`
/// (`local://${prefix}/data/chunkserver.dat`, conf/chunkserver.conf:40). Without it the
/// ChunkServer registers without an id (C:src/chunkserver/chunkserver.cpp:195-217).
pub const CHUNKSERVER_META_FILE: &str = "/curvebs/chunkserver/data/chunkserver.dat";
/// Seconds between two rounds of asking the MDS, when none answered.
pub const MDS_RETRY_SECONDS: u32 = 5;
/// curl's limits for one question to one MDS: connecting, and the whole exchange.
const MDS_CONNECT_TIMEOUT_SECONDS: u32 = 2;
const MDS_ANSWER_TIMEOUT_SECONDS: u32 = 5;

/// `json_field NAME JSON` prints the value of `"NAME":` in brpc's compact JSON when it is a
/// number or a string (without its quotes), and nothing otherwise. The image has no jq; mawk
/// only. Safe to search the whole text: a field name with its quotes and colon cannot occur
/// inside a JSON string, whose quotes are escaped.
pub fn json_field_function() -> String {
    "json_field() {\n  \
       printf '%s\\n' \"$2\" | awk -v name=\"$1\" '\n    \
         { json = json $0 }\n    \
         END {\n      \
           if (!match(json, \"\\\"\" name \"\\\"[ \\t]*:[ \\t]*\")) exit\n      \
           rest = substr(json, RSTART + RLENGTH)\n      \
           if (match(rest, /^\"[^\"]*\"/)) print substr(rest, 2, RLENGTH - 2)\n      \
           else if (match(rest, /^-?[0-9]+/)) print substr(rest, 1, RLENGTH)\n    \
         }'\n\
     }\n"
    .to_string()
}

/// Refuses to let an empty disk register while the MDS still lists a non-RETIRED ChunkServer
/// at this pod's ip:port (issue 29, item 3), with [`empty_disk_refusal`]'s text.
///
/// Only a volume without [`CHUNKSERVER_META_FILE`] asks: a ChunkServer with its meta file
/// registers with its own id and token. It asks `TopologyService.GetChunkServer` by hostIp +
/// port, which answers non-RETIRED ChunkServers only and -6 when there is none
/// (C:src/mds/topology/topology_service_manager.cpp:268-305, `FindChunkServerNotRetired`
/// C:src/mds/topology/topology.cpp:609-625). The list is `$MDS_ADDRESSES`, the value the daemon
/// itself gets as `-mdsListenAddr` (which wins over `mds.listen.addr` of its config,
/// chunkserver.cpp:769-770); only the primary answers, standbys open the port only after
/// winning the election (C:src/mds/main/main.cpp:119-127), so each address is tried in turn,
/// and the round repeats until one answers: no ChunkServer can register without the MDS anyway.
///
/// An OFFLINE old ChunkServer is refused too, although `RegistChunkServer` would then give a new
/// id (topology_service_manager.cpp:106-115): the MDS maps the copyset members every heartbeat
/// reports, raft peers known by ip:port, to the first non-RETIRED ChunkServer at that ip:port in
/// an unordered map (`GetChunkserverIdByPeerStr`, C:src/mds/heartbeat/heartbeat_manager.cpp:
/// 310-376; C:src/mds/topology/topology.cpp:609-625), so with two of them either may be taken.
fn empty_disk_gate() -> String {
    let refusal = empty_disk_refusal_text("$id", "$address", "$status", "$online");
    let reason = refusal
        .strip_prefix(REFUSAL_PREFIX)
        .expect("every refusal starts with the prefix refuse() adds");
    format!(
        "if [ ! -f {CHUNKSERVER_META_FILE} ]; then\n  \
           address=\"$POD_IP:$CURVE_PORT\"\n  \
           request=\"{{\\\"hostIp\\\":\\\"$POD_IP\\\",\\\"port\\\":$CURVE_PORT}}\"\n  \
           echo \"$0: this disk holds no Curve data (no {CHUNKSERVER_META_FILE}): asking the MDS whether a ChunkServer is still registered at $address\"\n  \
           try=0\n  \
           while :; do\n    \
             try=$((try + 1))\n    \
             for mds in $(echo \"$MDS_ADDRESSES\" | tr ',' ' '); do\n      \
               rc=0\n      \
               answer=$(curl -sf --connect-timeout {MDS_CONNECT_TIMEOUT_SECONDS} -m {MDS_ANSWER_TIMEOUT_SECONDS} -X POST -H 'Content-Type: application/json' -d \"$request\" \"http://$mds/TopologyService/GetChunkServer\") || rc=$?\n      \
               if [ \"$rc\" -ne 0 ]; then\n        \
                 echo \"$0: try $try: no answer from MDS $mds (curl exit $rc)\"\n        \
                 continue\n      \
               fi\n      \
               case $(json_field statusCode \"$answer\") in\n        \
                 0)\n          \
                   id=$(json_field chunkServerID \"$answer\")\n          \
                   status=$(json_field status \"$answer\")\n          \
                   online=$(json_field onlineState \"$answer\")\n          \
                   case $id in '' | *[!0-9]*) id= ;; esac\n          \
                   case $status in READWRITE | PENDDING | RETIRED) ;; *) id= ;; esac\n          \
                   case $online in ONLINE | OFFLINE | UNSTABLE) ;; *) id= ;; esac\n          \
                   if [ -z \"$id\" ]; then\n            \
                     refuse \"this disk holds no Curve data and MDS $mds lists a ChunkServer at $address, but its answer cannot be read: $answer\"\n          \
                   fi\n          \
                   refuse \"{reason}\"\n          \
                   ;;\n        \
                 -6)\n          \
                   echo \"$0: MDS $mds lists no ChunkServer at $address: this disk registers as a new ChunkServer\"\n          \
                   break 2\n          \
                   ;;\n        \
                 *)\n          \
                   echo \"$0: try $try: MDS $mds answered $answer\"\n          \
                   ;;\n      \
               esac\n    \
             done\n    \
             echo \"$0: no MDS of $MDS_ADDRESSES answered (try $try): asking again in {MDS_RETRY_SECONDS} s\"\n    \
             sleep {MDS_RETRY_SECONDS}\n  \
           done\n\
         fi\n"
    )
}

/// What `refuse` puts before every reason.
const REFUSAL_PREFIX: &str = "cannot start: ";

/// The tag that ends the empty-disk refusal, read back by the operator from the container's
/// termination message: `[empty-disk chunkserver=<id>]`.
const EMPTY_DISK_TAG: &str = "[empty-disk chunkserver=";

/// Why a ChunkServer with an empty data volume does not register while the MDS still lists a
/// non-RETIRED ChunkServer at its `ip:port`: `RegistChunkServer` would hand it that old id and
/// token (C:src/mds/topology/topology_service_manager.cpp:106-137) with none of its copies, and
/// the recover scheduler repairs OFFLINE replicas only — those copysets would stay a copy
/// short. The start script prints exactly this (with the values from the MDS's
/// `GetChunkServer`); the operator reads the id back with [`parse_empty_disk_refusal`].
pub fn empty_disk_refusal(id: u32, address: &str, status: &str, online: &str) -> String {
    empty_disk_refusal_text(&id.to_string(), address, status, online)
}

/// [`empty_disk_refusal`] of any text: the start script's, with its shell variables.
fn empty_disk_refusal_text(id: &str, address: &str, status: &str, online: &str) -> String {
    format!(
        "{REFUSAL_PREFIX}this disk holds no Curve data and ChunkServer {id} is still registered at \
         {address} ({status}, {online}): registering now would give this empty disk id {id} and \
         none of its copies; the operator retires ChunkServer {id} first (its copysets moved to \
         other ChunkServers), then this pod starts with a new id {EMPTY_DISK_TAG}{id}]"
    )
}

/// The old ChunkServer id an empty-disk refusal names, if `message` is one.
pub fn parse_empty_disk_refusal(message: &str) -> Option<u32> {
    let start = message.rfind(EMPTY_DISK_TAG)? + EMPTY_DISK_TAG.len();
    let rest = &message[start..];
    rest[..rest.find(']')?].parse().ok()
}

/// Succeeds once the ChunkServer reports its copysets loaded: `ChunkServerStatus` answers
/// `copysetLoadFin` true only after the reload at start (chunkserver_service.cpp:29-45;
/// CopysetNodeManager::LoadFinished), which begins after the port opened (chunkserver.cpp:360
/// starts the server, :405 the reload). brpc serves the RPC as JSON over HTTP on the same port
/// (curve-protocols.md §3); `curl` is in the image's base (docker/base/Dockerfile). The
/// daemon listens on its pod IP only (`-chunkServerIp`), not on loopback.
pub fn chunkserver_ready_script() -> String {
    "curl -sf -m 4 -X POST -d '{}' \"http://$POD_IP:$CURVE_PORT/ChunkServerService/ChunkServerStatus\" \
     | grep -q '\"copysetLoadFin\":true'"
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chunkserver_start_gates_an_empty_disk_then_checks_identity_then_limits_then_hands_over()
    {
        let script = chunkserver_start_script("/curvebs/chunkserver/logs");
        let gate = script
            .find(&format!("if [ ! -f {CHUNKSERVER_META_FILE} ]; then\n"))
            .unwrap();
        let identity = script.find(IDENTITY_FILE).unwrap();
        let limits = script.find("ulimit -H -n").unwrap();
        let exec = script.find("exec \"$@\"").unwrap();
        assert!(
            gate < identity && identity < limits && limits < exec,
            "{script}"
        );
        // Nothing before the gate writes to the volume.
        assert!(!script[..gate].contains(CHUNKSERVER_DATA_DIR), "{script}");
        assert!(script.starts_with("set -eu\n"), "{script}");
        assert!(
            script.contains("int($2 * 1024 / 16781312) + 65536"),
            "{script}"
        );
    }

    #[test]
    fn a_moved_volume_is_refused_with_one_text_in_the_script_and_for_given_values() {
        let script = chunkserver_start_script("/curvebs/chunkserver/logs");
        assert!(
            script.contains(&format!(
                "refuse \"{}\"",
                moved_volume_refusal("$node", "$ip", "$NODE_NAME", "$POD_IP")
            )),
            "{script}"
        );
        assert!(
            script.contains("echo \"cannot start: $1\" 2>/dev/null >/dev/termination-log"),
            "{script}"
        );
        let message = refusal_message(&moved_volume_refusal(
            "node-1", "10.0.0.1", "node-4", "10.0.0.4",
        ));
        assert!(
            message.starts_with(
                "cannot start: this ChunkServer's data was registered from node node-1 \
                 (10.0.0.1) and its pod is now on node node-4 (10.0.0.4): Curve knows a \
                 ChunkServer by ip:port"
            ),
            "{message}"
        );
        assert!(message.ends_with("move the volume back, or replace this ChunkServer"));
        // Inside the script's double quotes: nothing the shell would expand or end early.
        assert!(!message.contains(['"', '`', '$', '\\']), "{message}");
    }

    #[test]
    fn the_gate_asks_the_mds_by_ip_and_port_and_refuses_with_the_shared_text() {
        let gate = empty_disk_gate();
        assert!(
            gate.contains(
                "request=\"{\\\"hostIp\\\":\\\"$POD_IP\\\",\\\"port\\\":$CURVE_PORT}\"\n"
            ),
            "{gate}"
        );
        assert!(
            gate.contains("\"http://$mds/TopologyService/GetChunkServer\""),
            "{gate}"
        );
        assert!(
            gate.contains("for mds in $(echo \"$MDS_ADDRESSES\" | tr ',' ' '); do"),
            "{gate}"
        );
        let reason = empty_disk_refusal_text("$id", "$address", "$status", "$online")
            [REFUSAL_PREFIX.len()..]
            .to_string();
        assert!(gate.contains(&format!("refuse \"{reason}\"\n")), "{gate}");
        // Inside double quotes the shell expands only the four variables.
        let literal = ["$id", "$address", "$status", "$online"]
            .iter()
            .fold(reason, |text, variable| text.replace(variable, ""));
        assert!(
            !literal.contains(['$', '"', '\\', '`']),
            "the refusal's text must stay literal in the shell: {literal}"
        );
        // -6: on to the start; no answer: the next MDS, then again after a pause.
        assert!(gate.contains("-6)\n"), "{gate}");
        assert!(gate.contains("break 2\n"), "{gate}");
        assert!(
            gate.contains(&format!("sleep {MDS_RETRY_SECONDS}\n")),
            "{gate}"
        );
        // "$@" is the entrypoint's command line: the gate must leave it alone.
        assert!(
            !gate.contains("set --") && !gate.contains("shift"),
            "{gate}"
        );
    }

    #[test]
    fn an_empty_disk_refusal_names_the_old_id_and_reads_back() {
        let message = empty_disk_refusal(7, "10.0.0.4:8200", "READWRITE", "UNSTABLE");
        assert!(message.starts_with("cannot start: "), "{message}");
        assert!(
            message.contains(
                "ChunkServer 7 is still registered at 10.0.0.4:8200 (READWRITE, UNSTABLE)"
            ),
            "{message}"
        );
        assert_eq!(parse_empty_disk_refusal(&message), Some(7));
        assert_eq!(
            parse_empty_disk_refusal("cannot start: the open files hard limit is 1024"),
            None
        );
        assert_eq!(
            parse_empty_disk_refusal("x [empty-disk chunkserver=x]"),
            None
        );
    }

    #[test]
    fn the_mds_start_needs_a_fixed_number_of_files() {
        let script = mds_start_script(6700, 7700, "/curvebs/mds/logs");
        assert!(script.contains("need=65536\n"), "{script}");
        assert!(!script.contains(IDENTITY_FILE), "{script}");
        assert!(script.ends_with("exec \"$@\"\n"), "{script}");
    }

    /// The position of `needle` in `script`, which must hold it.
    fn at(script: &str, needle: &str) -> usize {
        script
            .find(needle)
            .unwrap_or_else(|| panic!("no {needle:?} in {script}"))
    }

    #[test]
    fn every_start_checks_its_ports_first_then_cores_then_starts_the_log_cleanup() {
        for (script, ports, logs) in [
            (etcd_start_script(2379, 2380), vec!["2379", "2380"], None),
            (
                mds_start_script(6700, 7700, "/curvebs/mds/logs"),
                vec!["6700", "7700"],
                Some("/curvebs/mds/logs"),
            ),
            (
                chunkserver_start_script("/curvebs/chunkserver/logs"),
                vec!["$CURVE_PORT"],
                Some("/curvebs/chunkserver/logs"),
            ),
        ] {
            assert!(script.starts_with("set -eu\nrefuse() {\n"), "{script}");
            let first_port = at(&script, &format!("if port_taken {} ", ports[0]));
            for port in &ports {
                assert!(
                    script.contains(&format!(
                        "refuse \"port {port} on node $NODE_NAME is already taken"
                    )),
                    "{script}"
                );
            }
            let cores = at(&script, "ulimit -S -c \"$(ulimit -H -c)\"");
            let exec = at(&script, "exec \"$@\"");
            assert!(first_port < cores && cores < exec, "{script}");
            match logs {
                Some(dir) => {
                    let now = at(&script, &format!("trim_logs {dir} || true\n("));
                    let background = at(
                        &script,
                        &format!("(while :; do sleep 60; trim_logs {dir} || true; done) &\n"),
                    );
                    assert!(
                        cores < now && now < background && background < exec,
                        "{script}"
                    );
                }
                None => assert!(!script.contains("trim_logs"), "{script}"),
            }
            // Nothing may touch the daemon's command line.
            assert!(
                !script.contains("set --") && !script.contains("shift"),
                "{script}"
            );
        }
    }

    #[test]
    fn a_taken_port_is_refused_naming_the_field_and_how_the_daemon_binds() {
        let check = mds_start_script(6700, 7700, "/curvebs/mds/logs");
        assert!(
            check.contains(
                "if port_taken 6700 \"$POD_IP\"; then\n  refuse \"port 6700 on node $NODE_NAME is already taken by another process, and this MDS must listen on it on $POD_IP (spec.mds.port): "
            ),
            "{check}"
        );
        assert!(
            check.contains(
                "if port_taken 7700 \"any\"; then\n  refuse \"port 7700 on node $NODE_NAME is already taken by another process, and this MDS must listen on it on every address (spec.mds.dummyPort): "
            ),
            "{check}"
        );
        let etcd = etcd_start_script(2379, 2380);
        for field in ["(spec.etcd.clientPort)", "(spec.etcd.peerPort)"] {
            assert!(etcd.contains(field), "{etcd}");
        }
    }

    #[test]
    fn the_log_cleanup_keeps_the_budget_in_kib_and_never_the_newest_file() {
        let trim = trim_logs_function();
        assert!(trim.contains(&format!("keep={}", 1024 * 1024)), "{trim}");
        assert!(trim.contains("ls -lt \"$1\""), "{trim}");
        // Regular files only (not glog's symlink), the newest (first) never printed.
        assert!(
            trim.contains("/^-/ { total += int(($5 + 1023) / 1024); if (++files > 1 && total > keep) print dir \"/\" $NF }"),
            "{trim}"
        );
    }
}

//! The stand-ins for Curve's tools: shell scripts generated from `standins/*.sh`, with the flag
//! table of the emulated Curve version filled in. They never run Curve code.

use crate::image::CurveVersion;
use crate::shell::quote;

/// The type of a gflags flag, as gflags names it in its messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FlagType {
    Bool,
    Int32,
    Uint32,
    Uint64,
    String,
}

impl FlagType {
    fn name(self) -> &'static str {
        match self {
            FlagType::Bool => "bool",
            FlagType::Int32 => "int32",
            FlagType::Uint32 => "uint32",
            FlagType::Uint64 => "uint64",
            FlagType::String => "string",
        }
    }
}

/// One `DEFINE_<type>(name, default, ...)` of the real binary. Booleans default to
/// "true"/"false", the form the scripts test.
struct Flag {
    name: &'static str,
    ty: FlagType,
    default: &'static str,
}

const fn flag(name: &'static str, ty: FlagType, default: &'static str) -> Flag {
    Flag { name, ty, default }
}

use FlagType::{Bool, Int32, String as Str, Uint32, Uint64};

/// Flags every gflags binary has.
const GFLAGS_BUILTINS: &[Flag] = &[
    flag("flagfile", Str, ""),
    flag("fromenv", Str, ""),
    flag("tryfromenv", Str, ""),
    flag("undefok", Str, ""),
    flag("tab_completion_columns", Int32, "80"),
    flag("tab_completion_word", Str, ""),
    flag("help", Bool, "false"),
    flag("helpfull", Bool, "false"),
    flag("helpshort", Bool, "false"),
    flag("helpon", Str, ""),
    flag("helpmatch", Str, ""),
    flag("helppackage", Bool, "false"),
    flag("helpxml", Bool, "false"),
    flag("version", Bool, "false"),
];

/// Flags glog defines in every binary that links it.
const GLOG_FLAGS: &[Flag] = &[
    flag("logtostderr", Bool, "false"),
    flag("alsologtostderr", Bool, "false"),
    flag("colorlogtostderr", Bool, "false"),
    flag("stderrthreshold", Int32, "2"),
    flag("log_prefix", Bool, "true"),
    flag("minloglevel", Int32, "0"),
    flag("logbuflevel", Int32, "0"),
    flag("logbufsecs", Int32, "30"),
    flag("log_dir", Str, ""),
    flag("log_link", Str, ""),
    flag("max_log_size", Int32, "1800"),
    flag("stop_logging_if_full_disk", Bool, "false"),
    flag("v", Int32, "0"),
    flag("vmodule", Str, ""),
    flag("logemaillevel", Int32, "999"),
    flag("alsologtoemail", Str, ""),
    flag("logmailer", Str, "/bin/mail"),
    flag("log_backtrace_at", Str, ""),
    flag("drop_log_memory", Bool, "true"),
    flag("symbolize_stacktrace", Bool, "true"),
];

/// src/tools/curve_format_main.cpp at v1.2.6.
const CURVE_FORMAT_FLAGS: &[Flag] = &[
    flag("allocateByPercent", Bool, "true"),
    flag("fileSize", Uint32, "16777216"),
    flag("metaPagSize", Uint32, "4096"),
    flag("fileSystemPath", Str, "./"),
    flag("filePoolDir", Str, "./filePool/"),
    flag("filePoolMetaPath", Str, "./filePool.meta"),
    flag("preAllocateNum", Uint32, "0"),
    flag("allocatePercent", Uint32, "80"),
    flag("needWriteZero", Bool, "true"),
];

/// Added to curve_format in v1.2.7.
const CURVE_FORMAT_BLOCK_SIZE: Flag = flag("blockSize", Uint32, "4096");

/// tools/curvefsTool.cpp at v1.2.6 (the image's curvebs-tool).
const CURVEBS_TOOL_FLAGS: &[Flag] = &[
    flag("mds_addr", Str, "127.0.0.1:6666"),
    flag("op", Str, ""),
    flag("cluster_map", Str, "/etc/curve/topo.json"),
    flag("chunkserver_id", Int32, "-1"),
    flag("chunkserver_status", Str, "readwrite"),
    flag("rpcTimeOutMs", Uint32, "5000"),
    flag("confPath", Str, "/etc/curve/tools.conf"),
    flag("logicalpool_id", Uint32, "4294967295"),
    flag("logicalpool_status", Str, "allow"),
];

/// The flags src/tools defines at v1.2.6 (curve_ops_tool also links brpc and Curve's client,
/// whose flags are not listed: the stand-in only warns about flags it does not know).
const CURVE_OPS_TOOL_FLAGS: &[Flag] = &[
    flag("confPath", Str, "/etc/curve/tools.conf"),
    flag("example", Bool, "false"),
    flag("mdsAddr", Str, "127.0.0.1:6666"),
    flag("mdsDummyPort", Str, "6667"),
    flag("etcdAddr", Str, "127.0.0.1:2379"),
    flag("snapshotCloneAddr", Str, "127.0.0.1:5555"),
    flag("snapshotCloneDummyPort", Str, "8081"),
    flag("rpcTimeout", Uint64, "3000"),
    flag("rpcRetryTimes", Uint64, "5"),
    flag("userName", Str, "root"),
    flag("password", Str, ""),
    flag("chunkserverAddr", Str, ""),
    flag("chunkserverId", Uint32, "0"),
    flag("serverId", Uint32, "0"),
    flag("serverIp", Str, ""),
    flag("logicalPoolId", Uint32, "0"),
    flag("copysetId", Uint32, "0"),
    flag("peer", Str, ""),
    flag("fileName", Str, ""),
    flag("filename", Str, ""),
    flag("fileLength", Uint64, "20"),
    flag("newSize", Uint64, "30"),
    flag("offset", Uint64, "0"),
    flag("chunkSize", Uint64, "16777216"),
    flag("stripeUnit", Uint64, "0"),
    flag("stripeCount", Uint64, "0"),
    flag("margin", Uint64, "1000"),
    flag("opName", Str, "total"),
    flag("checkCSAlive", Bool, "false"),
    flag("checkHealth", Bool, "true"),
    flag("checkOperator", Bool, "false"),
    flag("detail", Bool, "false"),
    flag("forcedelete", Bool, "false"),
    flag("offline", Bool, "false"),
    flag("unhealthy", Bool, "false"),
    flag("showAllocMap", Bool, "false"),
    flag("showAllocSize", Bool, "true"),
    flag("showFileSize", Bool, "false"),
    flag("listClientInRepo", Bool, "false"),
    flag("isTest", Bool, "false"),
    flag("scheduleAll", Bool, "true"),
    flag("operatorMaxPeriod", Uint64, "30"),
    flag("leaderOpInterval", Uint64, "5"),
    flag("opIntervalExceptLeader", Uint64, "5"),
    flag("replicasNum", Uint64, "3"),
    flag("timeout_ms", Int32, "3000"),
    flag("max_retry", Int32, "5"),
];

/// A stand-in script and where the image has the binary it replaces.
pub(crate) struct StandIn {
    /// Absolute path inside the image.
    pub path: &'static str,
    pub script: String,
}

/// Every stand-in the image root gets, for the given Curve version.
pub(crate) fn stand_ins(version: &CurveVersion) -> Vec<StandIn> {
    let mut curve_format_flags: Vec<&Flag> = CURVE_FORMAT_FLAGS.iter().collect();
    if version.has_block_size_flag() {
        curve_format_flags.push(&CURVE_FORMAT_BLOCK_SIZE);
    }
    vec![
        StandIn {
            path: "/curvebs/tools/sbin/curve_format",
            script: script(
                "curve_format",
                "curve_format_main.cpp",
                version,
                &curve_format_flags,
                true,
                include_str!("standins/curve_format.sh"),
            ),
        },
        StandIn {
            path: "/curvebs/tools/sbin/curvebs-tool",
            script: script(
                "curvebs-tool",
                "curvefsTool.cpp",
                version,
                &CURVEBS_TOOL_FLAGS.iter().collect::<Vec<_>>(),
                true,
                include_str!("standins/curvebs_tool.sh"),
            ),
        },
        StandIn {
            path: "/curvebs/tools/sbin/curve_ops_tool",
            script: curve_ops_tool_script(version),
        },
        StandIn {
            path: "/entrypoint.sh",
            script: script(
                "entrypoint.sh",
                "entrypoint.sh",
                version,
                &[],
                false,
                include_str!("standins/entrypoint.sh"),
            ),
        },
    ]
}

/// curve_ops_tool, which the image also has as `/usr/bin/curve_ops_tool`.
pub(crate) fn curve_ops_tool_script(version: &CurveVersion) -> String {
    script(
        "curve_ops_tool",
        "curve_tool_main.cpp",
        version,
        &CURVE_OPS_TOOL_FLAGS.iter().collect::<Vec<_>>(),
        false,
        include_str!("standins/curve_ops_tool.sh"),
    )
}

/// The prelude (recording, gflags, config and address helpers) with this tool's flag table,
/// followed by the tool's own body.
fn script(
    tool: &str,
    source: &str,
    version: &CurveVersion,
    own_flags: &[&Flag],
    refuse_unknown_flags: bool,
    body: &str,
) -> String {
    let flags: Vec<&Flag> = GFLAGS_BUILTINS
        .iter()
        .chain(GLOG_FLAGS)
        .chain(own_flags.iter().copied())
        .collect();
    let known = flags
        .iter()
        .map(|f| format!("{}:{}", f.name, f.ty.name()))
        .collect::<Vec<_>>()
        .join(" ");
    let defaults = flags
        .iter()
        .map(|f| format!("FLAG_{}={}", f.name, quote(f.default)))
        .collect::<Vec<_>>()
        .join("\n");
    let prelude = include_str!("standins/prelude.sh")
        .replace("@TOOL@", tool)
        .replace("@SOURCE@", source)
        .replace("@VERSION@", version.number())
        .replace("@KNOWN_FLAGS@", &known)
        .replace(
            "@REFUSE_UNKNOWN@",
            if refuse_unknown_flags { "1" } else { "0" },
        )
        .replace("@FLAG_DEFAULTS@", &defaults);
    format!("{prelude}{body}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_size_is_known_from_v1_2_7_only() {
        let v126 = CurveVersion::parse("v1.2.6").unwrap();
        let v127 = CurveVersion::parse("v1.2.7-rc1").unwrap();
        let format_script = |v: &CurveVersion| {
            stand_ins(v)
                .into_iter()
                .find(|s| s.path.ends_with("/curve_format"))
                .unwrap()
                .script
        };
        assert!(!format_script(&v126).contains("blockSize:uint32"));
        assert!(format_script(&v127).contains("blockSize:uint32"));
    }

    #[test]
    fn every_placeholder_is_filled() {
        let v = CurveVersion::parse("v1.2.6").unwrap();
        for stand_in in stand_ins(&v) {
            for placeholder in [
                "@TOOL@",
                "@SOURCE@",
                "@VERSION@",
                "@KNOWN_FLAGS@",
                "@REFUSE_UNKNOWN@",
                "@FLAG_DEFAULTS@",
            ] {
                assert!(
                    !stand_in.script.contains(placeholder),
                    "{}: {placeholder}",
                    stand_in.path
                );
            }
        }
    }
}

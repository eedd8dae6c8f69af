//! The stand-ins' invocation records: `/emulation/record/<binary>.<n>` in every container,
//! one directory per pod.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

/// One call of a stand-in (curve_format, curvebs-tool, curve_ops_tool, /entrypoint.sh).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invocation {
    /// The container that made the call.
    pub container: String,
    /// The stand-in's file name, e.g. `curve_format`.
    pub binary: String,
    /// Its number among the calls of that binary in the pod (1, 2, ...).
    pub number: u32,
    /// `argv[0]` (the path it was called by) and its arguments.
    pub argv: Vec<String>,
    /// Its environment.
    pub env: BTreeMap<String, String>,
}

impl Invocation {
    /// The arguments, without `argv[0]`.
    pub fn args(&self) -> &[String] {
        &self.argv[1..]
    }
}

/// The record file names present now.
pub(crate) fn snapshot(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The records written since `before`, attributed to `container`, in call order.
pub(crate) fn new_since(dir: &Path, before: &BTreeSet<String>, container: &str) -> Vec<Invocation> {
    let mut found: Vec<Invocation> = snapshot(dir)
        .difference(before)
        .filter_map(|name| {
            let (binary, number) = name.rsplit_once('.')?;
            let text = fs::read_to_string(dir.join(name)).ok()?;
            Some(parse(container, binary, number.parse().ok()?, &text))
        })
        .collect();
    found.sort_by(|a, b| (&a.binary, a.number).cmp(&(&b.binary, b.number)));
    found
}

/// argv one per line, `--- env`, then `NAME=VALUE` lines (a line without `=` continues the
/// previous value, which had a newline).
fn parse(container: &str, binary: &str, number: u32, text: &str) -> Invocation {
    let mut lines = text.strip_suffix('\n').unwrap_or(text).split('\n');
    let argv = lines
        .by_ref()
        .take_while(|line| *line != "--- env")
        .map(str::to_string)
        .collect();
    let mut env = BTreeMap::new();
    let mut last: Option<String> = None;
    for line in lines {
        match (line.split_once('='), &last) {
            (Some((name, value)), _) => {
                env.insert(name.to_string(), value.to_string());
                last = Some(name.to_string());
            }
            (None, Some(name)) => {
                if let Some(value) = env.get_mut(name) {
                    value.push('\n');
                    value.push_str(line);
                }
            }
            (None, None) => {}
        }
    }
    Invocation {
        container: container.to_string(),
        binary: binary.to_string(),
        number,
        argv,
        env,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_record() {
        let record =
            "/curvebs/tools/sbin/curve_format\n-filePoolDir=/data\n\n--- env\nPATH=/bin\nX=a\nb\n";
        let inv = parse("format", "curve_format", 2, record);
        assert_eq!(
            inv.argv,
            ["/curvebs/tools/sbin/curve_format", "-filePoolDir=/data", ""]
        );
        assert_eq!(inv.args(), ["-filePoolDir=/data", ""]);
        assert_eq!(inv.env["X"], "a\nb");
        assert_eq!(inv.env["PATH"], "/bin");
    }
}

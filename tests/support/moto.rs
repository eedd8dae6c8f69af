//! moto (`moto_server`, PyPI `moto[server]`) as an S3-compatible server for tests, set up by
//! botocore (tests/s3/botocore_helper.py). scripts/prereqs.sh (need_test_tools) installs both.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use curve_operator::s3::client::Bucket;
use curve_operator::s3::sigv4::Credentials;

/// The botocore helper, from the repository's root (this crate's tests) or from e2e/.
pub const HELPER: &str = "tests/s3/botocore_helper.py";

fn helper() -> &'static str {
    if std::path::Path::new(HELPER).exists() {
        HELPER
    } else {
        concat!("../", "tests/s3/botocore_helper.py")
    }
}

/// Runs `python3 args` with `stdin`; its standard output.
pub fn python(args: &[&str], stdin: &str) -> String {
    let mut child = Command::new("python3")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 (scripts/prereqs.sh installs the test tools)");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "python3 {args:?}: {} (botocore missing? run scripts/prereqs.sh)",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A moto server on a free port, stopped when dropped.
pub struct Moto {
    child: Child,
    pub endpoint: String,
    /// The access key and secret key of a user allowed S3 (any, when signatures go unchecked).
    pub keys: (String, String),
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A moto server with the bucket `backups`; it checks signatures when `checks`.
pub fn moto(checks: bool) -> Moto {
    moto_with(checks, None)
}

/// [`moto`], serving HTTPS with this certificate and key (PEM files) when given.
pub fn moto_with(checks: bool, tls: Option<(&Path, &Path)>) -> Moto {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut command = Command::new("moto_server");
    command.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
    let scheme = match tls {
        Some((cert, key)) => {
            command.arg("-s").arg("-c").arg(cert).arg("-k").arg(key);
            "https"
        }
        None => "http",
    };
    if checks {
        // The setup's actions (bucket, user, policy, key) go unchecked, every later one is.
        command.env("INITIAL_NO_AUTH_ACTION_COUNT", "4");
    }
    let child = (command.stdout(Stdio::null()).stderr(Stdio::null()).spawn())
        .expect("moto_server (PyPI moto[server]; scripts/prereqs.sh installs it)");
    let mut moto = Moto {
        child,
        endpoint: format!("{scheme}://127.0.0.1:{port}"),
        keys: Default::default(),
    };
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "moto_server did not listen"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let keys = python(&[helper(), "setup", &moto.endpoint], "");
    let (access, secret) = keys.trim().split_once(' ').unwrap();
    moto.keys = (access.to_string(), secret.to_string());
    moto
}

impl Moto {
    pub fn bucket(&self) -> Bucket {
        let credentials = Credentials {
            access_key: self.keys.0.clone(),
            secret_key: self.keys.1.clone(),
        };
        Bucket::new(&self.endpoint, "backups", "us-east-1", credentials).unwrap()
    }
}

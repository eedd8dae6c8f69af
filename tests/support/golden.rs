//! Golden files: reviewed, committed output. `UPDATE_GOLDEN=1` rewrites them from what the
//! code makes now; otherwise what it makes must equal the file.

use std::path::Path;

/// Fails unless `actual` is the text of the golden file `path` (`made_by` names what makes it,
/// for the message).
pub fn check(path: &Path, actual: &str, made_by: &str) {
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(path, actual).unwrap();
    }
    let expected = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 writes it)", path.display()));
    assert!(
        actual == expected,
        "{} is not what {made_by} makes (UPDATE_GOLDEN=1 to accept)",
        path.display()
    );
}

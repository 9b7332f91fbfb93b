//! The disk loader: supplies imported files (`use "./x.sflow"`) to the core, which does no I/O.

use sflow_compiler::sources::{join_relative, LoadedText, SourceLoader};

/// Reads imported files from the disk, relative to the importing file.
///
/// A file that cannot be read is reported as the reason and the path looked for (`no such file
/// or directory (looked for `app/x.sflow`)`); the core turns it into an E0104 at the `use`.
///
/// Paths are joined and normalised with [`join_relative`] (so `./a.sflow` imported twice by
/// different routes is one file), then read relative to the current directory, the same way the
/// root file named on the command line was read.
#[derive(Clone, Copy, Debug, Default)]
pub struct DiskLoader;

impl SourceLoader for DiskLoader {
    fn load(&self, from: &str, relative: &str) -> Result<LoadedText, String> {
        let path = join_relative(from, relative);
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(LoadedText { path, text }),
            Err(e) => Err(format!("{} (looked for `{path}`)", io_reason(&e))),
        }
    }
}

/// An I/O error in words, without the platform's error number (`no such file or directory`
/// rather than `No such file or directory (os error 2)`), so messages read the same everywhere.
pub fn io_reason(error: &std::io::Error) -> String {
    let text = error.to_string();
    let text = match text.find(" (os error ") {
        Some(at) => &text[..at],
        None => &text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_drop_the_error_number() {
        let error = std::io::Error::from_raw_os_error(2);
        let reason = io_reason(&error);
        assert!(!reason.contains("os error"), "{reason}");
        assert!(reason.starts_with(|c: char| !c.is_uppercase()), "{reason}");
    }

    #[test]
    fn missing_import_is_reported_with_its_joined_path() {
        let error = DiskLoader.load("no/such/dir/main.sflow", "./missing.sflow");
        assert!(
            matches!(&error, Err(e) if e.contains("`no/such/dir/missing.sflow`")),
            "{error:?}"
        );
    }
}

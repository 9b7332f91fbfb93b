//! Embeds the long explanations of diagnostic codes (`docs/codes/<CODE>.md`) into `sflowc`, so
//! `sflowc explain` works from the binary alone.
//!
//! Generates `$OUT_DIR/code_docs.rs`: a sorted table of (file stem, `include_str!` of the file).
//! Whether every code has its page, and every page a code, is checked by a test in
//! `src/commands/explain.rs`, not here, so a missing page never breaks the build.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let docs = manifest_dir.join("../../docs/codes");
    // The directory's own entry changes when a page is added or removed.
    println!("cargo:rerun-if-changed={}", docs.display());
    println!("cargo:rerun-if-changed=build.rs");

    let mut pages: Vec<(String, PathBuf)> = Vec::new();
    if docs.is_dir() {
        for entry in std::fs::read_dir(&docs)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "md") {
                if let Some(stem) = path.file_stem().and_then(|s| s.to_str()) {
                    println!("cargo:rerun-if-changed={}", path.display());
                    pages.push((stem.to_owned(), canonical(&path)));
                }
            }
        }
    }
    pages.sort();

    let mut out = String::from(
        "/// Every `docs/codes/*.md` page: (file name without `.md`, contents), sorted by name.\n\
         pub const CODE_DOCS: &[(&str, &str)] = &[\n",
    );
    for (stem, path) in &pages {
        writeln!(
            out,
            "    ({stem:?}, include_str!({:?})),",
            path.display().to_string()
        )?;
    }
    out.push_str("];\n");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out_dir.join("code_docs.rs"), out)?;
    Ok(())
}

fn canonical(path: &Path) -> PathBuf {
    path.canonicalize().unwrap_or_else(|_| path.to_path_buf())
}

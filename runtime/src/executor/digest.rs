//! Content digests of artifacts: a file's SHA-256, or for a directory the SHA-256 of its
//! sorted entries (relative path and file digest), so equal trees have equal digests.

use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::Path;

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// SHA-256 of some bytes, in hex.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// The digest and size of a file or directory tree.
pub fn digest_path(path: &Path) -> std::io::Result<(String, u64)> {
    let meta = std::fs::metadata(path)?;
    if meta.is_file() {
        return digest_file(path);
    }
    let mut entries = Vec::new();
    collect(path, path, &mut entries)?;
    entries.sort();
    let mut h = Sha256::new();
    let mut size = 0;
    for rel in entries {
        let (d, s) = digest_file(&path.join(&rel))?;
        size += s;
        h.update(rel.as_bytes());
        h.update([0]);
        h.update(d.as_bytes());
        h.update([b'\n']);
    }
    Ok((hex(&h.finalize()), size))
}

fn digest_file(path: &Path) -> std::io::Result<(String, u64)> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        size += n as u64;
        h.update(&buf[..n]);
    }
    Ok((hex(&h.finalize()), size))
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<String>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let ty = entry.file_type()?;
        if ty.is_dir() {
            collect(root, &path, out)?;
        } else if ty.is_file() {
            if let Ok(rel) = path.strip_prefix(root) {
                out.push(rel.to_string_lossy().into_owned());
            }
        }
    }
    Ok(())
}

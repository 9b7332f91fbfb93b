//! Saliency maps of a few digits the Checker picked, saved next to the report.
//!
//! The Checker writes the served model's gradient saliency maps of the samples it picks into
//! the picked batch (`STATE/ml/checker/AGENT/picked/H/saliency/`, docs/ml.md §3.1); the
//! demo copies those of the first picked batch — the first drifted digits the loop saw —
//! into `OUT/saliency/`: `NNNNN.pgm` (the digit), `NNNNN.saliency.pgm` (where the model
//! looked for its prediction), `NNNNN.runner-up.pgm` (for its second choice) and
//! `saliency.json` (predictions and probabilities).

use crate::DemoError;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Copies the maps of the first `n` samples of the earliest picked batch of checker `agent`
/// from the runtime's `state` into `out/saliency`; returns how many (0: the Checker picked
/// nothing, or wrote no maps).
pub fn save_picked(state: &Path, agent: &str, out: &Path, n: usize) -> Result<usize, DemoError> {
    let root = state.join("ml/checker").join(agent).join("picked");
    let Ok(entries) = std::fs::read_dir(&root) else {
        return Ok(0);
    };
    let mut batches: Vec<(std::time::SystemTime, PathBuf)> = entries
        .flatten()
        .map(|e| e.path().join("saliency"))
        .filter(|p| p.join("saliency.json").is_file())
        .filter_map(|p| Some((std::fs::metadata(&p).ok()?.modified().ok()?, p)))
        .collect();
    batches.sort();
    let Some((_, from)) = batches.into_iter().next() else {
        return Ok(0);
    };
    let index_path = from.join("saliency.json");
    let text = std::fs::read_to_string(&index_path).map_err(|e| DemoError::io(&index_path, e))?;
    let mut index: Value = serde_json::from_str(&text)
        .map_err(|e| DemoError::Runtime(format!("{}: {e}", index_path.display())))?;
    let samples: Vec<Value> = index["samples"]
        .as_array()
        .map(|a| a.iter().take(n).cloned().collect())
        .unwrap_or_default();
    let to = out.join("saliency");
    std::fs::create_dir_all(&to).map_err(|e| DemoError::io(&to, e))?;
    for s in &samples {
        for key in ["image", "saliency", "runner_up_saliency"] {
            let Some(name) = s[key].as_str().filter(|n| !n.contains('/')) else {
                continue;
            };
            let (src, dst) = (from.join(name), to.join(name));
            std::fs::copy(&src, &dst).map_err(|e| DemoError::io(&src, e))?;
        }
    }
    index["samples"] = Value::Array(samples.clone());
    index["source"] = Value::String(from.display().to_string());
    let dst = to.join("saliency.json");
    let text = serde_json::to_string_pretty(&index)
        .map_err(|e| DemoError::Runtime(format!("saliency.json: {e}")))?;
    std::fs::write(&dst, text).map_err(|e| DemoError::io(&dst, e))?;
    Ok(samples.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_picked_batch_maps_are_copied() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let state = dir.path().join("state");
        let maps = state.join("ml/checker/checker/picked/abc/saliency");
        std::fs::create_dir_all(&maps)?;
        for f in ["00000.pgm", "00000.saliency.pgm", "00000.runner-up.pgm"] {
            std::fs::write(maps.join(f), b"P5\n1 1\n255\n\x00")?;
        }
        std::fs::write(
            maps.join("saliency.json"),
            r#"{"samples": [{"image": "00000.pgm", "saliency": "00000.saliency.pgm", "runner_up_saliency": "00000.runner-up.pgm", "predicted": 3}, {"image": "00001.pgm"}]}"#,
        )?;
        let out = dir.path().join("out");
        assert_eq!(save_picked(&state, "checker", &out, 1)?, 1);
        assert!(out.join("saliency/00000.runner-up.pgm").is_file());
        let index: Value = serde_json::from_str(&std::fs::read_to_string(
            out.join("saliency/saliency.json"),
        )?)?;
        assert_eq!(index["samples"].as_array().map(Vec::len), Some(1));
        assert_eq!(save_picked(&state, "nobody", &out, 1)?, 0);
        Ok(())
    }
}

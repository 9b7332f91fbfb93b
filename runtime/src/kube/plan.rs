//! The plan in the cluster: the ConfigMap `<app>-plan` (compact JSON under `plan.json`, or
//! gzipped under `binaryData` `plan.json.gz`, docs/kubernetes-manifests.md §5), mounted at
//! `/etc/sflow/plan` and readable through the API.

use crate::error::{Error, Result};
use k8s_openapi::api::core::v1::ConfigMap;
use sflow_compiler::lower::plan::{Plan, API_VERSION};
use sflow_emit::conventions::{PLAN_GZ_KEY, PLAN_KEY};
use std::io::Read;
use std::path::Path;

/// Parses a plan from its bytes; `gzip`: they are gzipped.
pub fn parse(bytes: &[u8], gzip: bool, what: &str) -> Result<Plan> {
    let text = if gzip {
        let mut out = String::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_string(&mut out)
            .map_err(|e| Error::Msg(format!("{what} is not a gzipped plan: {e}")))?;
        out
    } else {
        String::from_utf8(bytes.to_vec())
            .map_err(|_| Error::Msg(format!("{what} is not UTF-8 text")))?
    };
    let plan: Plan = serde_json::from_str(&text)
        .map_err(|e| Error::Msg(format!("{what} is not a plan: {e}")))?;
    if plan.api_version != API_VERSION {
        return Err(Error::Msg(format!(
            "{what} has apiVersion `{}`; this runtime reads `{API_VERSION}`",
            plan.api_version
        )));
    }
    Ok(plan)
}

/// Reads the mounted plan: `plan.json`, or `plan.json.gz`.
pub fn read_file(path: &Path) -> Result<Plan> {
    let bytes = std::fs::read(path)
        .map_err(|e| Error::io(format!("cannot read the plan {}", path.display()), e))?;
    let gzip = path.extension().is_some_and(|e| e == "gz");
    parse(&bytes, gzip, &path.display().to_string())
}

/// Reads the plan from its ConfigMap through the API (`get` on `configmaps`, the one name the
/// Role allows).
pub async fn read_configmap(client: &::kube::Client, namespace: &str, name: &str) -> Result<Plan> {
    let api: ::kube::Api<ConfigMap> = ::kube::Api::namespaced(client.clone(), namespace);
    let cm = api
        .get(name)
        .await
        .map_err(|e| Error::Msg(format!("cannot read ConfigMap {namespace}/{name}: {e}")))?;
    let what = format!("ConfigMap {namespace}/{name}");
    if let Some(text) = cm.data.as_ref().and_then(|d| d.get(PLAN_KEY)) {
        return parse(text.as_bytes(), false, &what);
    }
    if let Some(bytes) = cm.binary_data.as_ref().and_then(|d| d.get(PLAN_GZ_KEY)) {
        return parse(&bytes.0, true, &what);
    }
    Err(Error::Msg(format!(
        "{what} has neither `{PLAN_KEY}` nor `{PLAN_GZ_KEY}`"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn plain_and_gzipped_plans_read_the_same() -> Result<()> {
        let plan = crate::program::plan_of_source(
            "t.sflow",
            "app t { namespace = \"t\" }\nworkflow w {\n  step s {\n    image = \"busybox\"\n    run = \"true\"\n  }\n}\n",
        )?;
        let json = serde_json::to_vec(&plan)?;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&json).map_err(|e| Error::io("gzip", e))?;
        let gz = gz.finish().map_err(|e| Error::io("gzip", e))?;
        let a = parse(&json, false, "plain")?;
        let b = parse(&gz, true, "gzipped")?;
        assert_eq!(serde_json::to_value(&a)?, serde_json::to_value(&b)?);
        assert!(parse(&json, true, "x")
            .map_err(|e| e.to_string())
            .err()
            .is_some_and(|e| e.contains("not a gzipped plan")));
        assert!(parse(b"{}", false, "x").is_err());
        Ok(())
    }
}

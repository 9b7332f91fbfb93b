//! The options of `sflow runtime`, each also read from the environment the runtime Deployment
//! sets (docs/kubernetes-manifests.md §11). Built in every build, so that `sflow runtime`
//! exists everywhere and can say when the `kubernetes` feature is missing.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// `sflow runtime`
#[derive(Debug, clap::Args)]
pub struct RuntimeArgs {
    /// The plan as mounted from its ConfigMap: `plan.json`, or `plan.json.gz` (gzip). The
    /// ConfigMap read through the API (`--plan-configmap`) wins when it can be read.
    #[arg(long, env = "SFLOW_PLAN")]
    pub plan: PathBuf,
    /// The app's name (default: the plan's).
    #[arg(long, env = "SFLOW_APP")]
    pub app: Option<String>,
    /// The namespace the app lives in (default: the plan's).
    #[arg(long, env = "SFLOW_NAMESPACE")]
    pub namespace: Option<String>,
    /// This replica's identity in the Lease (the pod's name; default: the host name).
    #[arg(long, env = "SFLOW_POD_NAME")]
    pub pod_name: Option<String>,
    /// The leader-election Lease (default: `<app>-runtime`).
    #[arg(long, env = "SFLOW_LEASE")]
    pub lease: Option<String>,
    /// Where to serve health, metrics and the control API: `:8080` (every interface), or an
    /// address such as `127.0.0.1:9000`.
    #[arg(long, env = "SFLOW_LISTEN", default_value = ":8080", value_parser = parse_listen)]
    pub listen: SocketAddr,
    /// The plan's ConfigMap, read through the API on start (the mounted copy can lag).
    #[arg(long, env = "SFLOW_PLAN_CONFIGMAP")]
    pub plan_configmap: Option<String>,
    /// The artifacts volume: the store is `ARTIFACTS/sflow/store.db` (unless `--state-dir`),
    /// and the `/artifacts/…` paths steps report are read here.
    #[arg(long, env = "SFLOW_ARTIFACTS", default_value = "/artifacts")]
    pub artifacts: PathBuf,
    /// How long a Lease holds without renewal (`15s`). The holder renews every third of it
    /// and stops acting when it could not renew for two thirds of it.
    #[arg(long, env = "SFLOW_LEASE_DURATION", default_value = "15s", value_parser = parse_duration)]
    pub lease_duration: Duration,
}

/// `:8080` → every interface, port 8080; otherwise a socket address.
pub fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    let full = if s.starts_with(':') {
        format!("0.0.0.0{s}")
    } else {
        s.to_string()
    };
    full.parse()
        .map_err(|_| format!("`{s}` is not an address like `:8080` or `127.0.0.1:9000`"))
}

/// `15s`, `500ms`, `2m` (at least one second, so that renewals make sense).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("`{s}` is not a duration like 15s, 1500ms or 1m");
    let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| bad())?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        _ => return Err(bad()),
    };
    if d < Duration::from_secs(1) {
        return Err(format!("`{s}`: a lease lasts at least 1s"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses() {
        assert_eq!(
            parse_listen(":8080"),
            Ok(SocketAddr::from(([0, 0, 0, 0], 8080)))
        );
        assert_eq!(
            parse_listen("127.0.0.1:9000"),
            Ok(SocketAddr::from(([127, 0, 0, 1], 9000)))
        );
        assert!(parse_listen("8080").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("1500ms"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("500ms").is_err());
        assert!(parse_duration("15").is_err());
        assert!(parse_duration("s").is_err());
    }
}

//! The control API over real HTTP on loopback, against the `sflow` binary running an app.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use serde_json::Value;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct App {
    pub child: Child,
    pub url: String,
    pub token: String,
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[allow(clippy::zombie_processes)] // the child is waited for when `App` drops
pub fn start_app(p: &Prog) -> App {
    let _ = std::fs::remove_file(p.state().join("api.json"));
    let child = Command::new(sflow_bin())
        .arg("run")
        .arg(&p.file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start sflow");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(text) = std::fs::read_to_string(p.state().join("api.json")) {
            let info: Value = serde_json::from_str(&text).unwrap();
            let url = info["url"].as_str().unwrap().to_string();
            let token = std::fs::read_to_string(p.state().join("token"))
                .unwrap()
                .trim()
                .to_string();
            return App { child, url, token };
        }
        if Instant::now() > deadline {
            let mut child = child;
            let _ = child.kill();
            let _ = child.wait();
            panic!("the control API did not start");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn get(app: &App, path: &str) -> Value {
    let (status, body) = http(&app.url, "GET", path, Some(&app.token), None, &[]);
    assert_eq!(status, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap()
}

fn wait_run(app: &App, id: i64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let run = get(app, &format!("/v1/runs/{id}"));
        if run["status"] != "running" {
            return run;
        }
        assert!(Instant::now() < deadline, "run {id} did not finish");
        std::thread::sleep(Duration::from_millis(50));
    }
}

const APP: &str = r#"
app hooks { namespace = "hooks" }
workflow backfill {
  param days: int = 1
  step s {
    image = "python:3.12-slim"
    run = "echo {{days}} >> backfilled.txt; echo '{\"rows\": 10}' > $SFLOW_METRICS"
    metric rows: int
  }
}
agent kind Notifier {
  sensor pages: int
  sensor mood: string
  action escalate(team: string)
}
agent pager: Notifier
trigger manual: webhook "/hooks/backfill" -> run backfill with { days = 30 }
trigger many:   every 5 pager.pages -> pager.escalate("ops")
"#;

#[test]
fn the_control_api_needs_the_token_and_fires_webhooks_over_http() {
    let p = Prog::new(APP);
    let app = start_app(&p);
    let mode = std::fs::metadata(p.state().join("token")).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
        0o600,
        "the token is private"
    );
    assert!(app.url.starts_with("http://127.0.0.1:"));

    // No token, a wrong token: 401 everywhere (health excepted).
    assert_eq!(http(&app.url, "GET", "/healthz", None, None, &[]).0, 200);
    for (method, path) in [
        ("GET", "/v1/status"),
        ("GET", "/v1/runs"),
        ("POST", "/hooks/backfill"),
        ("GET", "/v1/models"),
        ("GET", "/v1/decisions"),
    ] {
        assert_eq!(
            http(&app.url, method, path, None, None, &[]).0,
            401,
            "{method} {path}"
        );
        assert_eq!(
            http(&app.url, method, path, Some("wrong"), None, &[]).0,
            401,
            "{method} {path}"
        );
    }
    assert!(
        !p.path("backfilled.txt").exists(),
        "an unauthorised webhook fired nothing"
    );

    // The webhook trigger runs its workflow with its overrides.
    let (status, body) = http(
        &app.url,
        "POST",
        "/hooks/backfill",
        Some(&app.token),
        Some("{}"),
        &[("Idempotency-Key", "req-1")],
    );
    assert_eq!(status, 202, "{body}");
    let fired: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(fired["firing"], "trigger:manual:webhook:req-1");
    let run_id = fired["runs"][0]
        .as_i64()
        .expect("the response names the run");
    let run = wait_run(&app, run_id);
    assert_eq!(run["status"], "succeeded");
    assert_eq!(run["origin"], "trigger:manual");
    assert_eq!(p.read("backfilled.txt").trim(), "30");
    // The same request again (a client retry) fires nothing new.
    let (status, body) = http(
        &app.url,
        "POST",
        "/hooks/backfill",
        Some(&app.token),
        Some("{}"),
        &[("Idempotency-Key", "req-1")],
    );
    assert_eq!(status, 202);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["runs"][0].as_i64(),
        Some(run_id)
    );
    assert_eq!(lines(&p.path("backfilled.txt")), 1);
    // Unknown paths are 404.
    assert_eq!(
        http(&app.url, "POST", "/hooks/nope", Some(&app.token), None, &[]).0,
        404
    );

    // A manual run with params.
    let (status, body) = http(
        &app.url,
        "POST",
        "/v1/runs",
        Some(&app.token),
        Some(r#"{"workflow": "backfill", "params": {"days": 7}}"#),
        &[],
    );
    assert_eq!(status, 202, "{body}");
    let id = serde_json::from_str::<Value>(&body).unwrap()["run"]
        .as_i64()
        .unwrap();
    assert_eq!(wait_run(&app, id)["params"][0]["value"], "7");
    let (status, body) = http(
        &app.url,
        "POST",
        "/v1/runs",
        Some(&app.token),
        Some(r#"{"workflow": "backfill", "params": {"days": "many"}}"#),
        &[],
    );
    assert_eq!(status, 400);
    assert!(body.contains("`many` is not a valid int"), "{body}");

    // Sensors are set through the API (type-checked) and drive triggers; unbound actions are
    // published for an external implementation.
    let (status, body) = http(
        &app.url,
        "PUT",
        "/v1/agents/pager/sensors/pages",
        Some(&app.token),
        Some("3.5"),
        &[],
    );
    assert_eq!(status, 400);
    assert!(
        body.contains("expected an int but got the number 3.5"),
        "{body}"
    );
    assert_eq!(
        http(
            &app.url,
            "PUT",
            "/v1/agents/pager/sensors/mood",
            Some(&app.token),
            Some("\"calm\""),
            &[]
        )
        .0,
        200
    );
    assert_eq!(
        http(
            &app.url,
            "PUT",
            "/v1/agents/pager/sensors/pages",
            Some(&app.token),
            Some("6"),
            &[]
        )
        .0,
        200
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let actions = loop {
        let a = get(&app, "/v1/agents/pager/actions?after=0");
        if !a.as_array().unwrap().is_empty() || Instant::now() > deadline {
            break a;
        }
        std::thread::sleep(Duration::from_millis(30));
    };
    assert_eq!(actions[0]["action"], "escalate");
    assert_eq!(actions[0]["args"]["team"], "ops");
    let after = actions[0]["id"].as_i64().unwrap();
    assert!(
        get(&app, &format!("/v1/agents/pager/actions?after={after}"))
            .as_array()
            .unwrap()
            .is_empty()
    );
    let agents = get(&app, "/v1/agents");
    assert_eq!(agents[0]["sensors"]["mood"], "calm");
    assert_eq!(agents[0]["sensors"]["pages"], 6);

    // Reading endpoints.
    let status = get(&app, "/v1/status");
    assert_eq!(status["apps"][0]["name"], "hooks");
    assert_eq!(status["runs"]["succeeded"], 2);
    let runs = get(&app, "/v1/runs");
    assert_eq!(runs.as_array().unwrap().len(), 2);
    let events = get(&app, "/v1/events?after=0");
    assert!(events
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["event"] == "backfill.succeeded"));
    let decisions = get(&app, "/v1/decisions");
    assert!(decisions
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d["name"] == "manual" && d["status"] == "done"));
    assert!(get(&app, "/v1/models").as_array().unwrap().is_empty());

    // The same store, from the command line.
    let cli = p.read_json(&["runs"]);
    assert_eq!(cli.as_array().unwrap().len(), 2);
}

#[test]
fn one_runtime_per_state_directory() {
    let p = Prog::new(APP);
    let _app = start_app(&p);
    let out = p.run(&["--workflow", "backfill"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("another sflow runtime uses"));
}

//! The store's schema: versioned migrations applied once, in order.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use sflow_runtime::store::{self, schema::MIGRATIONS, Store};

#[test]
fn migrations_bring_a_new_store_to_the_latest_version_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let s = Store::open(&path).unwrap();
    assert_eq!(
        s.with(store::schema_version).unwrap(),
        MIGRATIONS.len() as i64
    );
    let tables: Vec<String> = s
        .with(|c| {
            let mut st =
                c.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")?;
            let rows = st
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()?;
            Ok(rows)
        })
        .unwrap();
    for t in [
        "agent_actions",
        "apps",
        "artifacts",
        "decisions",
        "events",
        "firings",
        "kv",
        "metrics",
        "model_aliases",
        "models",
        "params",
        "services",
        "signals",
        "step_runs",
        "tuning_trials",
        "tunings",
        "workflow_runs",
    ] {
        assert!(tables.contains(&t.to_string()), "table {t} in {tables:?}");
    }
    let mode: String = s
        .with(|c| Ok(c.query_row("PRAGMA journal_mode", [], |r| r.get(0))?))
        .unwrap();
    assert_eq!(mode, "wal");
    drop(s);
    // Reopening applies nothing again.
    let s = Store::open(&path).unwrap();
    assert_eq!(
        s.with(store::schema_version).unwrap(),
        MIGRATIONS.len() as i64
    );
}

#[test]
fn a_firing_is_recorded_once_per_key() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(&dir.path().join("store.db")).unwrap();
    let reads = serde_json::json!({"x": 1});
    assert!(s
        .with(|c| store::insert_firing(c, "k", "policy", "p", &reads, 2, 0))
        .unwrap());
    assert!(!s
        .with(|c| store::insert_firing(c, "k", "policy", "p", &reads, 2, 1))
        .unwrap());
    assert_eq!(s.with(store::pending_firings).unwrap().len(), 1);
    s.with(|c| store::advance_firing(c, "k", 2, "done", 2))
        .unwrap();
    assert!(s.with(store::pending_firings).unwrap().is_empty());
}

#[test]
fn model_versions_count_up_per_name_and_aliases_remember_the_previous_model() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(&dir.path().join("store.db")).unwrap();
    let j = serde_json::json!({});
    let (run, _) = s
        .with(|c| store::insert_run(c, "a", "w", "cli", None, &[], dir.path(), 0))
        .unwrap();
    let (m1, v1) = s
        .with(|c| store::register_model(c, "w.s.model", run, None, "/m1", "aa", 1, &j, &j, 0))
        .unwrap();
    let (m2, v2) = s
        .with(|c| store::register_model(c, "w.s.model", run, None, "/m2", "bb", 1, &j, &j, 0))
        .unwrap();
    let (_, other) = s
        .with(|c| store::register_model(c, "w.t.model", run, None, "/m3", "cc", 1, &j, &j, 0))
        .unwrap();
    assert_eq!((v1, v2, other), (1, 2, 1));
    s.with(|c| store::set_alias(c, "svc", "production", m1, None, 0))
        .unwrap();
    s.with(|c| store::set_alias(c, "svc", "production", m2, Some(m1), 1))
        .unwrap();
    assert_eq!(
        s.with(|c| store::alias(c, "svc", "production")).unwrap(),
        Some((m2, Some(m1)))
    );
    assert_eq!(
        s.with(|c| store::latest_model(c, "w.s.model"))
            .unwrap()
            .unwrap()
            .aliases,
        vec!["svc@production"]
    );
}

#[test]
fn concurrent_opens_of_a_new_store_migrate_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let p = path.clone();
            std::thread::spawn(move || {
                Store::open(&p).map(|s| s.with(store::schema_version).unwrap())
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap().unwrap(), MIGRATIONS.len() as i64);
    }
}

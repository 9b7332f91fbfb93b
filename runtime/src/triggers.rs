//! Triggers kept by the runtime itself: schedules (cron, in UTC, on the engine's clock).
//! `every N SENSOR` is evaluated by the control loop as the counter changes, `on EVENT` when
//! the event is recorded (its firings are recorded in the same transaction), and `webhook`
//! by the control API.
//!
//! A schedule's firing key is the trigger and the scheduled minute, so a schedule fires once
//! per minute it names even if the runtime restarts within that minute. Times missed while
//! the runtime was stopped are not caught up (as cron does not).

use crate::clock::{format_utc, minute_of, ms_of_minute};
use crate::engine::Shared;
use serde_json::json;
use sflow_compiler::values::CronSchedule;
use std::sync::Arc;

/// Fires trigger `index` at each time of `schedule`.
pub async fn schedule_loop(shared: Arc<Shared>, index: usize, schedule: CronSchedule) {
    let mut shutdown = shared.shutdown_receiver();
    let name = shared
        .plan()
        .triggers
        .get(index)
        .map(|t| t.name.clone())
        .unwrap_or_default();
    loop {
        let now = shared.clock().now_ms();
        let Some(next) = minute_of(now).and_then(|m| schedule.next_after(m)) else {
            tracing::warn!(trigger = name, "the schedule never fires again");
            return;
        };
        let at = ms_of_minute(next);
        tokio::select! {
            () = shared.clock().sleep_until(at) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
        let key = format!("trigger:{name}:schedule:{}", format_utc(at));
        match shared.fire_trigger(index, &key, json!({ "scheduled": format_utc(at) })) {
            Ok(true) => tracing::info!(trigger = name, at = format_utc(at), "schedule fired"),
            Ok(false) => {}
            Err(e) => tracing::error!(trigger = name, "cannot record a firing: {e}"),
        }
    }
}

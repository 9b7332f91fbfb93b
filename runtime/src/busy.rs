//! Counting work in flight, so `sflow run --workflow` can exit once the run and everything it
//! set off (trigger and policy firings, the runs they started) has finished.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::Notify;

/// A counter of work in flight.
#[derive(Clone, Debug, Default)]
pub struct Busy(Arc<Inner>);

#[derive(Debug, Default)]
struct Inner {
    n: AtomicUsize,
    notify: Notify,
}

/// One piece of work; dropping it ends the work.
#[derive(Debug)]
pub struct BusyGuard(Arc<Inner>);

impl Busy {
    /// Starts a piece of work. Start new work *before* ending the work that caused it, so the
    /// count never touches zero in between.
    pub fn enter(&self) -> BusyGuard {
        self.0.n.fetch_add(1, Ordering::SeqCst);
        BusyGuard(self.0.clone())
    }

    /// How much work is in flight.
    pub fn count(&self) -> usize {
        self.0.n.load(Ordering::SeqCst)
    }

    /// Resolves when no work is in flight.
    pub async fn idle(&self) {
        loop {
            let notified = self.0.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.0.n.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        if self.0.n.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.notify.notify_waiters();
        }
    }
}

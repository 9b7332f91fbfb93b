//! Time: a [`Clock`] the engine reads and sleeps on, so that schedules, `for` windows and
//! cooldowns can be tested with a [`TestClock`] that a test moves by hand, and civil-time
//! conversions for cron schedules (which run in UTC).

use sflow_compiler::values::NaiveMinute;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

/// A boxed future, as the object-safe traits of this crate return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where the engine gets the time from.
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now_ms(&self) -> Millis;
    /// Resolves once the clock has reached `deadline`.
    fn sleep_until(&self, deadline: Millis) -> BoxFuture<'static, ()>;
}

/// The real clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> Millis {
        system_now_ms()
    }

    fn sleep_until(&self, deadline: Millis) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            // Sleep in slices of at most a minute, so a long sleep notices a clock that was set.
            loop {
                let left = deadline - system_now_ms();
                if left <= 0 {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(left.clamp(1, 60_000) as u64)).await;
            }
        })
    }
}

/// The wall-clock time now.
pub fn system_now_ms() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as Millis)
}

/// A clock that only moves when told to: tests set it and advance it.
#[derive(Debug)]
pub struct TestClock {
    now: watch::Sender<Millis>,
}

impl TestClock {
    /// A clock standing at `start`.
    pub fn new(start: Millis) -> Arc<TestClock> {
        Arc::new(TestClock {
            now: watch::Sender::new(start),
        })
    }

    /// Moves the clock to `t` (never backwards).
    pub fn set(&self, t: Millis) {
        self.now.send_if_modified(|now| {
            if t > *now {
                *now = t;
                true
            } else {
                false
            }
        });
    }

    /// Moves the clock forward by `ms`.
    pub fn advance(&self, ms: Millis) {
        let t = *self.now.borrow() + ms;
        self.set(t);
    }
}

impl Clock for TestClock {
    fn now_ms(&self) -> Millis {
        *self.now.borrow()
    }

    fn sleep_until(&self, deadline: Millis) -> BoxFuture<'static, ()> {
        let mut rx = self.now.subscribe();
        Box::pin(async move {
            loop {
                if *rx.borrow_and_update() >= deadline {
                    return;
                }
                if rx.changed().await.is_err() {
                    // The clock is gone: nothing will ever wake us.
                    std::future::pending::<()>().await;
                }
            }
        })
    }
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(month) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day count since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// The UTC minute that contains `t`.
pub fn minute_of(t: Millis) -> Option<NaiveMinute> {
    let secs = t.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    NaiveMinute::new(
        i32::try_from(y).ok()?,
        m as u8,
        d as u8,
        (rem / 3600) as u8,
        ((rem % 3600) / 60) as u8,
    )
}

/// The start of minute `m`, in milliseconds since the epoch.
pub fn ms_of_minute(m: NaiveMinute) -> Millis {
    let days = days_from_civil(i64::from(m.year), u32::from(m.month), u32::from(m.day));
    (days * 86_400 + i64::from(m.hour) * 3600 + i64::from(m.minute) * 60) * 1000
}

/// `2026-01-31T02:00:00.000Z`
pub fn format_utc(t: Millis) -> String {
    let secs = t.div_euclid(1000);
    let ms = t.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Parses `YYYY-MM-DDTHH:MM[:SS]Z` (UTC) into milliseconds since the epoch.
pub fn parse_utc(text: &str) -> Option<Millis> {
    let text = text.trim().trim_end_matches('Z');
    let (date, time) = text.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, mo, da) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.split(':').map(|p| p.parse::<f64>().ok());
    let (h, mi) = (t.next()??, t.next()??);
    let s = t.next().flatten().unwrap_or(0.0);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&da) {
        return None;
    }
    let days = days_from_civil(y, mo as u32, da as u32);
    Some(days * 86_400_000 + (h * 3_600_000.0 + mi * 60_000.0 + s * 1000.0) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip() {
        for days in [-800_000i64, -1, 0, 1, 59, 365, 10_957, 20_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn minutes_round_trip() {
        let t = parse_utc("2026-02-28T23:59:00Z").expect("parses");
        let m = minute_of(t).expect("valid");
        assert_eq!(
            (m.year, m.month, m.day, m.hour, m.minute),
            (2026, 2, 28, 23, 59)
        );
        assert_eq!(ms_of_minute(m), t);
        assert_eq!(format_utc(t), "2026-02-28T23:59:00.000Z");
    }
}

//! The exchange's one notion of "now", shared by the services and the mail worker.

use std::sync::Arc;

/// The exchange's clock. Production reads the system time; tests move it forward to
/// reach a bid opening or a guarantee's expiry without waiting.
#[derive(Clone, Default)]
pub struct Clock {
    offset_seconds: Arc<std::sync::atomic::AtomicI64>,
}

impl Clock {
    /// Now, in UTC at microsecond precision (what both backends store).
    pub fn now(&self) -> chrono::NaiveDateTime {
        let offset = self
            .offset_seconds
            .load(std::sync::atomic::Ordering::Relaxed);
        system_now() + chrono::Duration::seconds(offset)
    }

    /// Moves this clock (and every service sharing it) forward.
    pub fn advance(&self, by: chrono::Duration) {
        self.offset_seconds
            .fetch_add(by.num_seconds(), std::sync::atomic::Ordering::Relaxed);
    }
}

/// The system time as stored: UTC, microsecond precision (what both backends keep).
pub fn system_now() -> chrono::NaiveDateTime {
    use chrono::SubsecRound;
    chrono::Utc::now().naive_utc().trunc_subsecs(6)
}

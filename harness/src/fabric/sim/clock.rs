//! Virtual time for the simulated fabric, at nanosecond resolution.
//!
//! On a runtime from [`runtime`], the fabric keeps its own virtual clock and moves it
//! itself: when the runtime has nothing left to run (tokio's `on_thread_park` hook), the
//! fabric with the earliest pending event moves its clock straight to it — a few
//! microseconds for a packet — with no tokio timer per message and without touching
//! tokio's clock. tokio's (paused) clock follows at its own resolution: before an event
//! on or past tokio's next 1 ms tick, the fabric advances tokio's clock to that tick, so
//! every tokio timer fires at the tick tokio itself would fire it at, in order among the
//! fabric's events; the fabric's clock is never behind tokio's and never a tick ahead.
//!
//! On any other runtime (a plain `#[tokio::test(start_paused = true)]`, a real-time one)
//! the fabric falls back to one tokio timer per pending event: the same order of events,
//! each hop rounded up to tokio's 1 ms tick.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::runtime::{Builder, Handle, Id, Runtime};
use tokio::time::Instant;

use super::Shared;

/// tokio's timer resolution: tokio's clock is advanced one of these at a time, so tokio
/// timers fire at their own ticks among the fabric's events.
pub(crate) const TIMER_TICK: Duration = Duration::from_millis(1);

/// A current-thread runtime with paused time on which every simulated fabric created
/// inside it keeps nanosecond virtual time (see the module docs). Use it for anything that
/// runs on the `sim` fabric: the same seed gives the same order of events on it.
pub fn runtime() -> std::io::Result<Runtime> {
    let hook = Arc::new(IdleHook::default());
    let on_park = hook.clone();
    let rt = Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .on_thread_park(move || on_park.on_idle())
        .build()?;
    // The paused clock has not moved since the timer driver took it as its start: tokio's
    // ticks are counted from here.
    let origin = rt.block_on(async { Instant::now() });
    *hook.origin.lock().unwrap_or_else(|p| p.into_inner()) = Some(origin);
    let mut hooked = HOOKED.lock().unwrap_or_else(|p| p.into_inner());
    hooked.retain(|(_, h)| h.strong_count() > 0);
    hooked.push((rt.handle().id(), Arc::downgrade(&hook)));
    Ok(rt)
}

/// The runtimes built by [`runtime`] that are still alive, by id.
static HOOKED: Mutex<Vec<(Id, Weak<IdleHook>)>> = Mutex::new(Vec::new());

/// The fabrics of one runtime that wait for it to go idle.
#[derive(Default)]
pub(crate) struct IdleHook {
    fabrics: Mutex<Vec<Weak<Shared>>>,
    /// How many of them wait now (the hook returns at once when none does).
    waiting: AtomicUsize,
    /// tokio's tick 0 on this runtime.
    origin: Mutex<Option<Instant>>,
}

/// A fabric's side of the hook: the event its pump waits for idleness to reach, and
/// whether the hook chose it.
pub(crate) struct IdleWait {
    /// Nanoseconds from the hook's origin to the event; `NOT_WAITING` when the pump does
    /// not wait for idleness.
    at: AtomicU64,
    /// Set by the hook when it wakes the pump because the runtime is idle.
    fired: AtomicBool,
}

const NOT_WAITING: u64 = u64::MAX;

impl Default for IdleWait {
    fn default() -> IdleWait {
        IdleWait {
            at: AtomicU64::new(NOT_WAITING),
            fired: AtomicBool::new(false),
        }
    }
}

impl IdleHook {
    /// The hook of the runtime this is called in, if it was built by [`runtime`].
    pub(crate) fn current() -> Option<Arc<IdleHook>> {
        let id = Handle::try_current().ok()?.id();
        let hooked = HOOKED.lock().unwrap_or_else(|p| p.into_inner());
        hooked
            .iter()
            .find(|(i, _)| *i == id)
            .and_then(|(_, h)| h.upgrade())
    }

    /// The instant tokio counts its timer ticks from on this runtime.
    pub(crate) fn origin(&self) -> Instant {
        self.origin
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .unwrap_or_else(Instant::now)
    }

    /// Registers a fabric whose pump waits for idleness.
    pub(crate) fn register(&self, shared: &Arc<Shared>) {
        let mut fabrics = self.fabrics.lock().unwrap_or_else(|p| p.into_inner());
        fabrics.retain(|f| f.strong_count() > 0);
        fabrics.push(Arc::downgrade(shared));
    }

    /// The pump of `wait`'s fabric is about to wait, for new work or for the runtime to go
    /// idle before its next event, at `at`.
    pub(crate) fn wait_for_idle(&self, wait: &IdleWait, at: Instant) {
        let ns = at.saturating_duration_since(self.origin()).as_nanos();
        let ns = u64::try_from(ns).unwrap_or(NOT_WAITING - 1);
        wait.fired.store(false, Ordering::Relaxed);
        wait.at.store(ns, Ordering::Relaxed);
        self.waiting.fetch_add(1, Ordering::Relaxed);
    }

    /// The pump woke: true if it was because the runtime went idle.
    pub(crate) fn stop_waiting(&self, wait: &IdleWait) -> bool {
        if wait.at.swap(NOT_WAITING, Ordering::Relaxed) != NOT_WAITING {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
        }
        wait.fired.swap(false, Ordering::Relaxed)
    }

    /// The runtime has nothing to run: wake the fabric whose next event comes first (ties go
    /// to the first registered, so the choice depends on nothing but the program).
    fn on_idle(&self) {
        if self.waiting.load(Ordering::Relaxed) == 0 {
            return;
        }
        let fabrics = self.fabrics.lock().unwrap_or_else(|p| p.into_inner());
        let mut first: Option<(u64, Arc<Shared>)> = None;
        for f in fabrics.iter().filter_map(Weak::upgrade) {
            let at = f.idle.at.load(Ordering::Relaxed);
            if at != NOT_WAITING && first.as_ref().is_none_or(|(t, _)| at < *t) {
                first = Some((at, f));
            }
        }
        drop(fabrics);
        if let Some((_, f)) = first {
            if f.idle.at.swap(NOT_WAITING, Ordering::Relaxed) != NOT_WAITING {
                self.waiting.fetch_sub(1, Ordering::Relaxed);
            }
            f.idle.fired.store(true, Ordering::Relaxed);
            f.pump.notify_one();
        }
    }
}

/// tokio's first timer tick after `now`, counting ticks from `origin`.
pub(crate) fn next_tick(origin: Instant, now: Instant) -> Instant {
    let since = now.saturating_duration_since(origin).as_nanos();
    let tick = TIMER_TICK.as_nanos();
    origin + Duration::from_nanos(((since / tick + 1) * tick) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_tick_is_strictly_after_now() {
        let o = Instant::now();
        let us = Duration::from_micros;
        assert_eq!(next_tick(o, o), o + us(1000));
        assert_eq!(next_tick(o, o + us(999)), o + us(1000));
        assert_eq!(next_tick(o, o + us(1000)), o + us(2000));
        assert_eq!(next_tick(o, o + us(4321)), o + us(5000));
    }

    #[test]
    fn only_runtimes_built_here_have_a_hook() {
        let rt = runtime().expect("runtime");
        assert!(rt.block_on(async { IdleHook::current() }).is_some());
        let plain = Builder::new_current_thread().build().expect("runtime");
        assert!(plain.block_on(async { IdleHook::current() }).is_none());
        assert!(IdleHook::current().is_none(), "outside any runtime");
    }
}

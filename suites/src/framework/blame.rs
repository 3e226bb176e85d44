//! Blame: which requirement each check of a case checks. A case names its main requirement
//! in its metadata; a check inside it that tests another rule says so first
//! ([`checking`], or [`under`] for a scope). A failure is attributed to the requirement of
//! the check that failed, and every check that ran is counted against its requirement,
//! so one bug is reported as the one rule it breaks and the report can say how many checks
//! each requirement passed.
//!
//! Two rules apply whatever a case is about, unless the case named the requirement in force
//! itself ([`checking`], [`under`]): a response that never comes is blamed on
//! `DP-ANSWERED` (every command is answered), and a response whose fields are wrong on
//! `DP-RESPONSE` ([`super::Failure`]'s conversion from the host's errors).
//!
//! The state is per thread: every case runs on a current-thread runtime, so its body, and
//! every task it spawns, run on the thread that [`begin`] was called on.

use std::cell::RefCell;

#[derive(Default)]
struct State {
    /// The requirement checks are counted against now.
    current: Option<&'static str>,
    /// Whether the case named `current` itself (not just its main requirement).
    explicit: bool,
    /// Checks that ran, per requirement, in order of first use.
    checks: Vec<(&'static str, u32)>,
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State::default());
}

/// Starts a case whose main requirement is `requirement`: checks count against it until
/// the case says otherwise; the counts start at zero.
pub fn begin(requirement: &'static str) {
    STATE.with(|s| {
        *s.borrow_mut() = State {
            current: Some(requirement),
            explicit: false,
            checks: Vec::new(),
        }
    });
}

/// Ends the case: the checks that ran, per requirement. Checks made outside a case (no
/// [`begin`]) are not counted.
pub fn finish() -> Vec<(&'static str, u32)> {
    STATE.with(|s| std::mem::take(&mut *s.borrow_mut()).checks)
}

/// The requirement checks are counted against now, if a case is running.
pub fn current() -> Option<&'static str> {
    STATE.with(|s| s.borrow().current)
}

/// Whether the requirement in force was named by the case ([`checking`], [`under`]) rather
/// than being its main one.
pub fn explicit() -> bool {
    STATE.with(|s| s.borrow().explicit)
}

/// From here on, the case's checks check `requirement`.
pub fn checking(requirement: &'static str) {
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        s.current = Some(requirement);
        s.explicit = true;
    });
}

/// Checks made while the returned guard lives check `requirement`; dropping it goes back
/// to the requirement before. For helpers that check a rule of their own (every command
/// is answered, a response's fields) whatever the case is about.
#[must_use = "the requirement applies while the guard lives"]
pub fn under(requirement: &'static str) -> Scope {
    let before = STATE.with(|s| {
        let s = s.borrow();
        (s.current, s.explicit)
    });
    checking(requirement);
    Scope { before }
}

/// See [`under`].
pub struct Scope {
    before: (Option<&'static str>, bool),
}

impl Drop for Scope {
    fn drop(&mut self) {
        let (current, explicit) = self.before;
        STATE.with(|s| {
            let mut s = s.borrow_mut();
            s.current = current;
            s.explicit = explicit;
        });
    }
}

/// One check of the current requirement ran and held (the check macros and helpers call
/// it).
pub fn count() {
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        let Some(r) = s.current else { return };
        match s.checks.iter_mut().find(|(id, _)| *id == r) {
            Some((_, n)) => *n += 1,
            None => s.checks.push((r, 1)),
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_count_against_the_requirement_in_force() {
        begin("A");
        count();
        assert!(!explicit());
        {
            let _scope = under("B");
            count();
            count();
            assert_eq!(current(), Some("B"));
            assert!(explicit());
        }
        assert_eq!(current(), Some("A"));
        assert!(!explicit());
        checking("C");
        assert!(explicit());
        count();
        assert_eq!(finish(), vec![("A", 1), ("B", 2), ("C", 1)]);
        assert_eq!(current(), None);
        count();
        assert!(finish().is_empty(), "no case, nothing counted");
    }
}

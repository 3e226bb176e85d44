//! Blame: which requirement each check of a case checks. A case names its main requirement
//! in its metadata; a check inside it that tests another rule says so first
//! ([`checking`], or [`under`] for a scope). A failure is attributed to the requirement of
//! the check that failed, and every check that ran is counted against its requirement,
//! so one bug is reported as the one rule it breaks and the report can say how many checks
//! each requirement passed.
//!
//! A catalog may also have rules that apply whatever a case is about, unless the case
//! named the requirement in force itself ([`checking`], [`under`]): the offload catalog
//! blames a response that never comes on `DP-ANSWERED` (every command is answered), and a
//! response whose fields are wrong on `DP-RESPONSE`. The runner passes them to [`begin`]
//! as an [`ErrorRule`]; [`super::Failure`]'s conversion from an error asks it.
//!
//! Cases that name no requirement (the fabric contract's) never call [`begin`]: their
//! failures blame none and their checks are not counted.
//!
//! The state is per thread: every case runs on a current-thread runtime, so its body, and
//! every task it spawns, run on the thread that [`begin`] was called on.

use std::cell::RefCell;

/// The requirement an error breaks whatever the case is about, if the catalog has such a
/// rule for it.
pub type ErrorRule = fn(&(dyn std::error::Error + 'static)) -> Option<&'static str>;

#[derive(Default)]
struct State {
    /// The requirement checks are counted against now.
    current: Option<&'static str>,
    /// Whether the case named `current` itself (not just its main requirement).
    explicit: bool,
    /// Checks that ran, per requirement, in order of first use.
    checks: Vec<(&'static str, u32)>,
    /// The catalog's rule for errors.
    rule: Option<ErrorRule>,
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State::default());
}

/// Starts a case whose main requirement is `requirement`: checks count against it until
/// the case says otherwise; the counts start at zero. `rule` blames errors that break a
/// rule of their own (see the module's text).
pub fn begin(requirement: &'static str, rule: Option<ErrorRule>) {
    STATE.with(|s| {
        *s.borrow_mut() = State {
            current: Some(requirement),
            explicit: false,
            checks: Vec::new(),
            rule,
        }
    });
}

/// The requirement `e` breaks by the running catalog's rule, unless the case named the
/// requirement in force itself.
pub fn of_error(e: &(dyn std::error::Error + 'static)) -> Option<&'static str> {
    STATE.with(|s| {
        let s = s.borrow();
        match (s.explicit, s.rule) {
            (false, Some(rule)) => rule(e),
            _ => None,
        }
    })
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
        begin("A", None);
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

    #[test]
    fn the_error_rule_applies_unless_the_case_named_the_requirement() {
        #[derive(Debug)]
        struct Late;
        impl std::fmt::Display for Late {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("late")
            }
        }
        impl std::error::Error for Late {}
        fn rule(e: &(dyn std::error::Error + 'static)) -> Option<&'static str> {
            e.is::<Late>().then_some("ANSWERED")
        }
        assert_eq!(of_error(&Late), None, "no case, no rule");
        begin("A", Some(rule));
        assert_eq!(of_error(&Late), Some("ANSWERED"));
        assert_eq!(of_error(&std::fmt::Error), None);
        {
            let _scope = under("B");
            assert_eq!(of_error(&Late), None, "the case named B itself");
        }
        assert_eq!(of_error(&Late), Some("ANSWERED"));
        finish();
        assert_eq!(of_error(&Late), None, "the rule ends with the case");
    }
}

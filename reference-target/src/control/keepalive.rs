//! The Keep Alive Timer of a controller: torn down when no Keep Alive (or other admin
//! command the host counts as one) arrived within KATO. One watchdog task per controller
//! and KATO: Set Features 0Fh starts a new one and the old one retires
//! (`NvmfCtrl::kato_gen`); a KATO of 0 turns the timer off.

use std::sync::Arc;

use tokio::time::Instant;

use super::state::{Shared, IDLE_TICK};

/// Starts the watchdog of controller `cntlid` of subsystem `sub` for its current KATO
/// (none when it is 0), retiring any earlier one.
pub(crate) fn start(sh: &Arc<Shared>, sub: usize, cntlid: u16) {
    let gen = {
        let mut st = sh.lock();
        let Some(c) = st.ctrls.get_mut(&(sub, cntlid)) else {
            return;
        };
        c.kato_gen = c.kato_gen.wrapping_add(1);
        c.last_ka = Instant::now();
        if c.kato.is_zero() {
            return;
        }
        c.kato_gen
    };
    sh.spawn(watchdog(sh.clone(), sub, cntlid, gen));
}

/// Tears the controller down when no Keep Alive arrived within KATO.
async fn watchdog(sh: Arc<Shared>, sub: usize, cntlid: u16, gen: u32) {
    loop {
        let deadline = {
            let st = sh.lock();
            let Some(c) = st.ctrls.get(&(sub, cntlid)) else {
                return;
            };
            if c.kato_gen != gen {
                return; // a Set Features 0Fh started another
            }
            c.last_ka + c.kato
        };
        if Instant::now() >= deadline {
            sh.log(format!(
                "kato-expired subsystem={} cntlid={cntlid}",
                sh.subs[sub].cfg.nqn
            ));
            sh.teardown_ctrl(sub, cntlid, "keep alive timeout expired");
            return;
        }
        tokio::time::sleep_until(deadline.min(Instant::now() + IDLE_TICK * 60)).await;
    }
}

//! Process calls the runner's isolation needs (`fork`, `_exit`): unsafe in libc's terms,
//! confined here with the conditions under which the runner uses them.

#![allow(unsafe_code)]

use nix::unistd::ForkResult;

/// Forks the process. Only the calling thread exists in the child: the runner calls this
/// from its single runner thread and, in the child, runs one case on a fresh
/// current-thread runtime and leaves with [`exit_now`], never returning into code that
/// could wait on another thread's lock.
pub(crate) fn fork() -> nix::Result<ForkResult> {
    // SAFETY: see above: the child touches no state owned by other threads of the parent
    // (it builds its own runtime) and ends with `_exit`.
    unsafe { nix::unistd::fork() }
}

/// Ends the process at once with `code`: no unwinding into the parent's frames, no atexit
/// handlers, no flushing of stdio buffers inherited across `fork`.
pub(crate) fn exit_now(code: i32) -> ! {
    // SAFETY: `_exit` takes no pointers and never returns; ending without running the
    // parent's atexit handlers is the point (they belong to the parent).
    unsafe { nix::libc::_exit(code) }
}

//! Ctrl-C (SIGINT), SIGTERM and SIGHUP as a flag that long runs poll, so that
//! they can stop and print what they measured so far, as iperf3 does. The
//! handler only sets the flag and puts the signal's default action back: a
//! second one ends the process at once.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

static HIT: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    // Async-signal-safe: an atomic store and nothing else.
    HIT.store(true, Ordering::SeqCst);
}

/// Watch SIGINT, SIGTERM and SIGHUP from now on.
pub fn install() -> io::Result<()> {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: FFI. `sa` is fully initialised (zeroed, then the handler, an
        // empty mask and flags set); the handler only stores to an atomic, which
        // is async-signal-safe; SA_RESETHAND restores the default action after
        // the first delivery; the old action is not asked for (null).
        let rc = unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
            sa.sa_flags = libc::SA_RESETHAND | libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut())
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// A watched signal has arrived.
pub fn interrupted() -> bool {
    HIT.load(Ordering::SeqCst)
}

/// The error a run stopped by a signal ends with, after its summary.
pub fn error() -> io::Error {
    io::Error::new(io::ErrorKind::Interrupted, "interrupted")
}

//! The watchdog: an input that runs longer than [`HANG`] is a finding. The parser cannot be
//! stopped, so the watchdog writes the finding and exits the process (status 4).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long one input may run.
pub(crate) const HANG: Duration = Duration::from_secs(2);

/// What runs now: the target, when it started, the input and where findings go.
struct Running {
    target: &'static str,
    since: Instant,
    input: Arc<Vec<u8>>,
    dir: Arc<std::path::PathBuf>,
}

/// The watchdog's view of the main thread.
#[derive(Clone, Default)]
pub(crate) struct Watchdog(Arc<Mutex<Option<Running>>>);

impl Watchdog {
    /// Starts the watchdog thread.
    pub(crate) fn spawn() -> Watchdog {
        let dog = Watchdog::default();
        let seen = dog.clone();
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_millis(100));
            let guard = seen.0.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(run) = guard.as_ref().filter(|r| r.since.elapsed() > HANG) {
                let message = format!("no result after {HANG:?} (a hang)");
                crate::report_finding(run.target, &run.dir, &run.input, &message);
                std::process::exit(4);
            }
        });
        dog
    }

    /// `input` of `target` starts now.
    pub(crate) fn start(
        &self,
        target: &'static str,
        dir: &Arc<std::path::PathBuf>,
        input: &Arc<Vec<u8>>,
    ) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(Running {
            target,
            since: Instant::now(),
            input: Arc::clone(input),
            dir: Arc::clone(dir),
        });
    }

    /// The input finished.
    pub(crate) fn stop(&self) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }
}

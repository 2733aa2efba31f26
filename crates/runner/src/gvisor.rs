//! The gVisor runtime: the Envelope translated into `nucleus-gvisor`'s
//! bundle description and run with `runsc`.

use crate::{Envelope, Outcome, RunError};

/// Runs the Envelope under gVisor.
pub(crate) fn run(_env: &Envelope) -> Result<Outcome, RunError> {
    Err(RunError::RunscMissing)
}

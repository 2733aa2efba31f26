//! The child's steps in the log: the init stamps the end of each stage
//! (`Message::Step`, only when the runner logs at debug level), and the
//! parent logs them after the run, since nothing between clone and exec
//! may allocate or lock as logging does.

use crate::channel::Message;
use crate::stage::Stage;
use std::time::Duration;

/// The stages the child went through, in time order, each with how long
/// it took from the end of the one before (the first from `cloned_ns`, the
/// parent's clock just before the clone). Records of one stage in a row
/// are one step; the init and the workload both stamp the fork.
pub(crate) fn durations(messages: &[Message], cloned_ns: u64) -> Vec<(Stage, Duration)> {
    let mut stamps: Vec<(u64, Stage)> = messages
        .iter()
        .filter_map(|m| match *m {
            Message::Step { stage, at_ns } => Some((at_ns, stage)),
            _ => None,
        })
        .collect();
    stamps.sort_by_key(|&(at, _)| at);
    let mut steps: Vec<(Stage, u64)> = Vec::new();
    for (at, stage) in stamps {
        match steps.last_mut() {
            Some(last) if last.0 == stage => last.1 = at,
            _ => steps.push((stage, at)),
        }
    }
    let mut before = cloned_ns;
    steps
        .into_iter()
        .map(|(stage, end)| {
            let took = Duration::from_nanos(end.saturating_sub(before));
            before = end;
            (stage, took)
        })
        .collect()
}

/// Logs the child's steps (debug level), one event per stage.
pub(crate) fn log(messages: &[Message], cloned_ns: u64) {
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return;
    }
    for (stage, took) in durations(messages, cloned_ns) {
        tracing::debug!(stage = stage.name(), time = ?took, "child step");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(stage: Stage, at_ns: u64) -> Message {
        Message::Step { stage, at_ns }
    }

    #[test]
    fn steps_are_grouped_by_stage_and_timed_from_the_one_before() {
        let messages = [
            step(Stage::Sync, 110),
            step(Stage::Sync, 150),
            Message::Exited { status: 0 },
            step(Stage::Mount, 400),
            // The workload's stamp of the fork may arrive first.
            step(Stage::Exec, 900),
            step(Stage::Fork, 700),
            step(Stage::Fork, 650),
        ];
        assert_eq!(
            durations(&messages, 100),
            [
                (Stage::Sync, Duration::from_nanos(50)),
                (Stage::Mount, Duration::from_nanos(250)),
                (Stage::Fork, Duration::from_nanos(300)),
                (Stage::Exec, Duration::from_nanos(200)),
            ]
        );
    }

    #[test]
    fn no_records_no_steps() {
        assert!(durations(&[Message::Exited { status: 0 }], 5).is_empty());
    }
}

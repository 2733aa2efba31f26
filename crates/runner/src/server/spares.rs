//! Which spares the server keeps (`spare.rs` is the sandbox's side). A
//! spare is built for the **shape** of a `run` request the server saw: the
//! request without its command, timeout and capture (so the same Envelope
//! otherwise, the same client directory and environment). The server
//! keeps the shapes of the last [`MAX_SHAPES`] such requests, each for
//! [`SHAPE_IDLE`] after its last request, and builds up to `--spares` of
//! each while it is idle. A spare whose build failed stops the building
//! for its shape for [`RETRY_AFTER`].

use crate::protocol::{Op, Request};
use std::time::{Duration, Instant};

/// How many shapes have spares at once.
pub(super) const MAX_SHAPES: usize = 4;

/// How long a shape keeps its spares with no request of it.
pub(super) const SHAPE_IDLE: Duration = Duration::from_secs(60);

/// How long a shape whose spare failed goes without.
const RETRY_AFTER: Duration = Duration::from_secs(10);

/// A shape of recent requests.
pub(super) struct Shape {
    pub(super) key: String,
    /// What its spares are built from: a request of the shape with a
    /// placeholder command.
    pub(super) template: Request,
    last: Instant,
    failed: Option<Instant>,
}

/// The shapes, the most recent last.
pub(super) struct Shapes {
    list: Vec<Shape>,
    per_shape: usize,
}

impl Shapes {
    pub(super) fn new(per_shape: usize) -> Shapes {
        Shapes {
            list: Vec::new(),
            per_shape,
        }
    }

    /// The shape of a `run` request that a spare can take (its body fits
    /// the spare's control socket); `None` with spares off.
    pub(super) fn key(&self, req: &mut Request, body_len: usize) -> Option<String> {
        if self.per_shape == 0 || req.op != Op::Run || body_len > crate::session::MAX_EXEC_REQUEST {
            return None;
        }
        // What each request has of its own, taken out while the rest is
        // written (no copy of the request), then put back.
        let env = req.envelope.as_mut()?;
        let own = (
            std::mem::take(&mut env.command),
            env.timeout.take(),
            env.capture.take(),
        );
        let key = serde_json::to_string(&*req).ok();
        if let Some(env) = req.envelope.as_mut() {
            (env.command, env.timeout, env.capture) = own;
        }
        key
    }

    /// A request of shape `key` came: it becomes the most recent. Returns
    /// the keys of the shapes dropped to make room.
    pub(super) fn note(&mut self, key: &str, req: &Request) -> Vec<String> {
        let now = Instant::now();
        if let Some(i) = self.list.iter().position(|s| s.key == key) {
            let mut shape = self.list.remove(i);
            shape.last = now;
            self.list.push(shape);
            return Vec::new();
        }
        let Some(template) = shape_of(req, vec!["/bin/true".to_owned()]) else {
            return Vec::new();
        };
        self.list.push(Shape {
            key: key.to_owned(),
            template,
            last: now,
            failed: None,
        });
        let extra = self.list.len().saturating_sub(MAX_SHAPES);
        self.list.drain(..extra).map(|s| s.key).collect()
    }

    /// A spare of `key` ended before it took a request.
    pub(super) fn failed(&mut self, key: &str) {
        if let Some(shape) = self.list.iter_mut().find(|s| s.key == key) {
            tracing::debug!("a spare failed; its shape goes without for a while");
            shape.failed = Some(Instant::now());
        }
    }

    /// The most recent shape with fewer than `--spares` spares (`count`
    /// says how many one has), unless its last spare failed recently.
    pub(super) fn wanting(&self, count: impl Fn(&str) -> usize) -> Option<&Shape> {
        self.list.iter().rev().find(|s| {
            s.failed.is_none_or(|at| at.elapsed() >= RETRY_AFTER) && count(&s.key) < self.per_shape
        })
    }

    /// Drops the shapes with no request for [`SHAPE_IDLE`]; returns their keys.
    pub(super) fn expire(&mut self) -> Vec<String> {
        // Called at every turn of the server's loop: nothing is moved
        // unless a shape is due.
        if !self.list.iter().any(|s| s.last.elapsed() >= SHAPE_IDLE) {
            return Vec::new();
        }
        let (old, kept): (Vec<Shape>, Vec<Shape>) = std::mem::take(&mut self.list)
            .into_iter()
            .partition(|s| s.last.elapsed() >= SHAPE_IDLE);
        self.list = kept;
        old.into_iter().map(|s| s.key).collect()
    }

    /// When the next shape expires.
    pub(super) fn next_expiry(&self) -> Option<Instant> {
        self.list.iter().map(|s| s.last + SHAPE_IDLE).min()
    }

    /// When a failed shape may have spares again (while one waits).
    pub(super) fn next_retry(&self) -> Option<Instant> {
        self.list
            .iter()
            .filter_map(|s| s.failed.map(|at| at + RETRY_AFTER))
            .filter(|at| *at > Instant::now())
            .min()
    }
}

/// `req` without what each request of a shape has of its own, with
/// `command` in place of its command.
fn shape_of(req: &Request, command: Vec<String>) -> Option<Request> {
    let mut shape = req.clone();
    let env = shape.envelope.as_mut()?;
    env.command = command;
    env.timeout = None;
    env.capture = None;
    Some(shape)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(cmd: &str, timeout: Option<u64>) -> Request {
        let mut env = crate::Envelope::builder([cmd]).build().unwrap();
        env.timeout = timeout.map(Duration::from_secs);
        Request::run(env)
    }

    #[test]
    fn a_shape_is_the_request_without_its_command_timeout_and_capture() {
        let shapes = Shapes::new(2);
        let a = shapes.key(&mut run("/bin/true", None), 10).unwrap();
        let mut ls = run("/bin/ls", Some(5));
        assert_eq!(Some(&a), shapes.key(&mut ls, 10).as_ref());
        // The request is as it was.
        assert_eq!(ls, run("/bin/ls", Some(5)));
        let mut other = run("/bin/true", None);
        other.cwd = Some("/srv".into());
        assert_ne!(Some(a), shapes.key(&mut other, 10));
        // Off, or too large for a spare: no shape.
        assert_eq!(Shapes::new(0).key(&mut run("/bin/true", None), 10), None);
        let big = crate::session::MAX_EXEC_REQUEST + 1;
        assert_eq!(shapes.key(&mut run("/bin/true", None), big), None);
    }

    #[test]
    fn the_least_recent_shape_goes_first() {
        let mut shapes = Shapes::new(1);
        let mut keys: Vec<String> = Vec::new();
        for i in 0..=MAX_SHAPES {
            let mut req = run("/bin/true", None);
            req.cwd = Some(format!("/d{i}").into());
            let key = shapes.key(&mut req, 10).unwrap();
            if i == 2 {
                // The first becomes the most recent again.
                assert!(shapes.note(&keys[0], &req).is_empty());
            }
            let dropped = shapes.note(&key, &req);
            keys.push(key);
            let expected = if i == MAX_SHAPES {
                vec![keys[1].clone()]
            } else {
                Vec::new()
            };
            assert_eq!(dropped, expected);
        }
        let wanting = shapes.wanting(|_| 0).unwrap();
        assert_eq!(wanting.key, keys[MAX_SHAPES]);
        assert_eq!(wanting.template.envelope().unwrap().command, ["/bin/true"]);
        shapes.failed(&keys[MAX_SHAPES]);
        assert_ne!(shapes.wanting(|_| 0).unwrap().key, keys[MAX_SHAPES]);
        assert!(shapes.wanting(|_| 1).is_none());
    }
}

//! Binary formats: the wasm cache file's header and the child-to-parent channel's records.

use crate::Target;
use nucleus_runner::fuzzing::{decode_record, RECORD_LEN};
use nucleus_wasm::fuzzing::{encode_entry, verify_entry};

const KEY: [u8; 32] = [7; 32];
const MODULE: [u8; 32] = [1; 32];
const SETTINGS: [u8; 32] = [2; 32];

/// `nucleus_wasm::fuzzing::verify_entry` (the cache's header and tag check, feature
/// `fuzzing`): what it accepts is exactly what `encode_entry` writes for its payload, and
/// every payload written verifies.
pub(crate) const WASM_CACHE: Target = Target {
    name: "wasm-cache",
    entry: "nucleus_wasm::fuzzing::verify_entry",
    run: wasm_cache,
    seeds: wasm_cache_seeds,
};

fn wasm_cache(bytes: &[u8]) -> bool {
    let written = encode_entry(KEY, MODULE, SETTINGS, bytes);
    assert_eq!(
        verify_entry(written, KEY, MODULE, SETTINGS).as_deref(),
        Ok(bytes),
        "a written entry does not verify"
    );
    let Ok(payload) = verify_entry(bytes.to_vec(), KEY, MODULE, SETTINGS) else {
        return false;
    };
    assert_eq!(encode_entry(KEY, MODULE, SETTINGS, &payload), bytes);
    true
}

fn wasm_cache_seeds() -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    for payload in [&b""[..], b"payload", &[0x5a; 1000]] {
        seeds.push(encode_entry(KEY, MODULE, SETTINGS, payload));
        // Planted: a well-formed header tagged under another key.
        seeds.push(encode_entry([9; 32], MODULE, SETTINGS, payload));
        // Another engine's entry.
        seeds.push(encode_entry(KEY, MODULE, [3; 32], payload));
    }
    seeds
}

/// `nucleus_runner::fuzzing::decode_record` (the parent's channel decoder, feature
/// `fuzzing`) on each 16-byte record of the input, at most 256 as the parent reads: a
/// decoded message encodes to a record that decodes to itself.
pub(crate) const CHANNEL: Target = Target {
    name: "channel",
    entry: "nucleus_runner::fuzzing::decode_record",
    run: channel,
    seeds: channel_seeds,
};

fn channel(bytes: &[u8]) -> bool {
    let mut any = false;
    for chunk in bytes.chunks_exact(RECORD_LEN).take(256) {
        let mut record = [0u8; RECORD_LEN];
        record.copy_from_slice(chunk);
        if let Some(encoded) = decode_record(&record) {
            assert_eq!(decode_record(&encoded), Some(encoded), "{record:?}");
            any = true;
        }
    }
    any
}

fn record(kind: u32, a: u32, b: i32, c: u32) -> [u8; RECORD_LEN] {
    let mut out = [0u8; RECORD_LEN];
    out[0..4].copy_from_slice(&kind.to_ne_bytes());
    out[4..8].copy_from_slice(&a.to_ne_bytes());
    out[8..12].copy_from_slice(&b.to_ne_bytes());
    out[12..16].copy_from_slice(&c.to_ne_bytes());
    out
}

fn channel_seeds() -> Vec<Vec<u8>> {
    let records = [
        // Stage numbers start at 1 (sync); 2 is mount, 11 landlock.
        record(1, 1, 2, 0),
        record(1, 2, 13, 4),
        record(1, 11, 2, 3),
        record(2, 0, 9, 0),
        record(3, 1, 0, 2),
        record(4, 0, 5, 0),
        record(5, 3 | 1 << 31, 0x2345_6789, 1),
        record(5, 0, -1, u32::MAX),
        record(6, 2, 0x1234_5678, 0x9abc_def0),
    ];
    let mut seeds: Vec<Vec<u8>> = records.iter().map(|r| r.to_vec()).collect();
    seeds.push(records.concat());
    seeds
}

/// The launch server's decoder (`nucleus_runner::protocol`): the input is a frame as a
/// client wrote it on the socket, or as a server answered. Its first 4 bytes are the
/// frame's length (`frame_len`, within the request limit), the rest goes to
/// `decode_request` (the server) and to `decode_reply` (a client reading a server);
/// accepted when either decodes. A decoded request encodes to a frame that decodes to the
/// same request.
pub(crate) const PROTOCOL: Target = Target {
    name: "protocol",
    entry: "nucleus_runner::protocol::{frame_len, decode_request, decode_reply}",
    run: protocol,
    seeds: protocol_seeds,
};

fn protocol(bytes: &[u8]) -> bool {
    use nucleus_runner::protocol::{self, MAX_REPLY, MAX_REQUEST};
    let Some((header, body)) = bytes.split_first_chunk::<4>() else {
        return false;
    };
    let reply =
        protocol::frame_len(*header, MAX_REPLY).is_ok() && protocol::decode_reply(body).is_ok();
    if protocol::frame_len(*header, MAX_REQUEST).is_err() {
        return reply;
    }
    let Ok(req) = protocol::decode_request(body) else {
        return reply;
    };
    let frame = protocol::encode_request(&req).expect("a decoded request encodes");
    let len = protocol::frame_len(frame[..4].try_into().expect("4 bytes"), MAX_REQUEST)
        .expect("an encoded request is within the limit");
    let again = protocol::decode_request(&frame[4..4 + len]).expect("an encoded request decodes");
    assert_eq!(again, req, "the request changed through its frame");
    true
}

fn protocol_seeds() -> Vec<Vec<u8>> {
    use nucleus_runner::protocol::{encode_error, encode_request, ErrorKind, Request};
    let mut seeds = Vec::new();
    for env in crate::config::envelopes() {
        let mut req = Request::run(env);
        seeds.extend(encode_request(&req));
        req.cwd = Some("/work".into());
        req.environ = Some([("PATH".to_owned(), "/usr/bin".to_owned())].into());
        seeds.extend(encode_request(&req));
    }
    seeds.extend(session_seeds());
    seeds.push(encode_error(ErrorKind::Busy, "256 sandboxes run"));
    seeds.push(encode_error(
        ErrorKind::NotFound,
        "no session is named \"x\"",
    ));
    seeds
}

/// One request of each session op, every field set.
fn session_seeds() -> Vec<Vec<u8>> {
    use nucleus_runner::protocol::{encode_request, Exec, Op, Request};
    let named = |op| {
        let mut req = Request::op(op);
        req.session = Some("agent-7".to_owned());
        req
    };
    let mut create = named(Op::SessionCreate);
    create.envelope = crate::config::envelopes().into_iter().next();
    create.idle_timeout = Some(std::time::Duration::from_secs(90));
    let mut exec = named(Op::SessionExec);
    exec.exec = Some(Exec {
        command: vec!["/bin/sh".to_owned(), "-c".to_owned(), "echo hi".to_owned()],
        env: [("X".to_owned(), "1".to_owned())].into(),
        workdir: Some("/tmp".into()),
        timeout: Some(std::time::Duration::from_millis(1500)),
        capture: Some(4096),
    });
    [
        create,
        exec,
        named(Op::SessionRm),
        Request::op(Op::SessionLs),
    ]
    .iter()
    .filter_map(|req| encode_request(req).ok())
    .collect()
}

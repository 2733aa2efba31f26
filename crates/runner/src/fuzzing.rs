//! Not an API: the child-to-parent channel's record decoder, exposed (cargo feature
//! `fuzzing`) only so that the `nucleus-fuzz` crate can feed it untrusted bytes. No
//! stability promise; nothing else may use it.

/// The size of one channel record.
pub const RECORD_LEN: usize = 16;

/// Decodes one record as the parent does, and encodes the message it holds again: `None`
/// when the record holds no message (the parent ignores it).
pub fn decode_record(record: &[u8; RECORD_LEN]) -> Option<[u8; RECORD_LEN]> {
    crate::channel::reencode(record)
}

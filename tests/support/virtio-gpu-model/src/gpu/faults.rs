//! Fault injection: a device that refuses commands, never answers, answers late, or writes
//! a broken used-ring entry, on a test's request.
//!
//! Faults are armed on [`GpuBackend`](super::GpuBackend) and consumed by its queue processing:
//! - a *failure* answers the n-th next command of a type with an error response, without
//!   executing it;
//! - *holding* completions executes requests but keeps them out of the used ring until
//!   [`GpuBackend::release_held`](super::GpuBackend::release_held);
//! - a *corruption* breaks the used-ring entry (or the response) of the next control-queue
//!   completion;
//! - an *EDID fault* makes every `GET_EDID` answer an EDID that fails its own checks (a bad
//!   base-block checksum, or an extension block with a bad checksum) until it is disarmed;
//!   an *EDID blob* makes it answer any bytes at all (a fuzzer's).
//!
//! The backend also watches the driver's side of the contract: a request whose head
//! descriptor or buffers are still held by the device must not be made available again
//! ([`GpuBackend::reused_while_held`](super::GpuBackend::reused_while_held)), and memory the
//! device still uses must not be freed ([`GpuBackend::holds_memory`](super::GpuBackend::holds_memory)).

use std::collections::VecDeque;

use vm_memory::GuestAddress;

use viogpu_common::protocol::{CommandType, ResponseType};

/// Whether `response` refuses a request by which the driver gets memory back from the device
/// (DETACH_BACKING, or UNREF, which releases a blob's pages): the device still holds them.
/// A corrupted header must not turn such a refusal into an answer the driver takes for "done"
/// (OK, or QEMU's "nothing to detach" and "no such resource"): that is a lie no driver can tell
/// from the truth, like a failure scripted as OK, so the model does not tell it (the
/// corruption is dropped for that response).
pub(crate) fn refused_release(command: Option<CommandType>, response: &[u8]) -> bool {
    let release = matches!(
        command,
        Some(CommandType::RESOURCE_DETACH_BACKING | CommandType::RESOURCE_UNREF)
    );
    release && response_type(response).is_some_and(ResponseType::is_error)
}

/// The header type of a response, if it has one.
pub(crate) fn response_type(response: &[u8]) -> Option<ResponseType> {
    let bytes = response.get(..4)?;
    Some(ResponseType(u32::from_le_bytes(bytes.try_into().ok()?)))
}

/// Whether a release request answered `ty` counts as done for the driver.
pub(crate) fn looks_done(ty: ResponseType) -> bool {
    ty == ResponseType::OK_NODATA
        || ty == ResponseType::ERR_UNSPEC
        || ty == ResponseType::ERR_INVALID_RESOURCE_ID
}

/// How the next control-queue completion is broken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Corruption {
    /// The response is written in full, but the used element reports this length (e.g. 0, or
    /// fewer bytes than a header, or more than the writable buffers hold).
    UsedLength(u32),
    /// The used element carries id `queue size + 5`, an index no descriptor has; the real
    /// head is never returned.
    BogusUsedId,
    /// The used element carries this id instead of the request's head (e.g. the head of a
    /// request still in flight, or one already completed).
    WrongUsedId(u16),
    /// The response header's type is replaced by this raw value (garbage or a wrong OK type).
    ResponseType(u32),
    /// The request is put into the used ring twice.
    DuplicateUsed,
    /// The four response bytes at `offset` (when the response has them) are replaced by
    /// `value`, little endian: a header field, a display-info rectangle, an EDID size.
    ResponseWord {
        /// Byte offset in the response.
        offset: u16,
        /// The value written there.
        value: u32,
    },
}

/// How `GET_EDID` answers are broken while an EDID fault is armed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EdidFault {
    /// The base block's checksum byte is wrong.
    BaseChecksum,
    /// The base block announces one extension block (its checksum fixed up to match), and
    /// that CTA-861 extension's checksum is wrong.
    ExtensionChecksum,
}

impl EdidFault {
    /// Breaks `block` (a valid base block) as this fault says; returns the EDID bytes.
    pub(crate) fn apply(self, block: &[u8]) -> Vec<u8> {
        let mut bytes = block.to_vec();
        match self {
            EdidFault::BaseChecksum => {
                if let Some(last) = bytes.last_mut() {
                    *last = last.wrapping_add(1);
                }
            }
            EdidFault::ExtensionChecksum => {
                if bytes.len() >= 128 {
                    bytes[126] = 1;
                    bytes[127] = checksum_for(&bytes[..127]);
                    let mut ext = [0u8; 128];
                    // CTA-861 tag, revision 3, no DTDs or data blocks.
                    ext[0] = 0x02;
                    ext[1] = 0x03;
                    ext[2] = 4;
                    ext[127] = checksum_for(&ext[..127]).wrapping_add(1);
                    bytes.extend_from_slice(&ext);
                }
            }
        }
        bytes
    }
}

/// The byte that makes a 128-byte EDID block sum to zero, given its first 127 bytes.
fn checksum_for(first: &[u8]) -> u8 {
    first
        .iter()
        .fold(0u8, |sum, b| sum.wrapping_add(*b))
        .wrapping_neg()
}

/// A request the device executed but has not completed yet.
#[derive(Clone, Debug)]
pub(crate) struct HeldCompletion {
    pub(crate) queue_index: u16,
    pub(crate) head: u16,
    pub(crate) writable: Vec<(GuestAddress, u32)>,
    pub(crate) response: Vec<u8>,
    /// Every guest range the request uses (buffers and indirect table) until it completes.
    pub(crate) ranges: Vec<std::ops::Range<u64>>,
    /// See [`refused_release`].
    pub(crate) refused_release: bool,
}

impl HeldCompletion {
    /// True if the request uses any byte of `range`.
    pub(crate) fn overlaps(&self, range: &std::ops::Range<u64>) -> bool {
        self.ranges
            .iter()
            .any(|r| r.start < range.end && range.start < r.end)
    }
}

/// One armed failure: let `skip` more commands of `command` through, then fail one.
#[derive(Clone, Copy, Debug)]
struct Failure {
    command: CommandType,
    skip: u32,
    response: ResponseType,
}

/// The armed faults of a device.
#[derive(Clone, Debug, Default)]
pub(crate) struct Faults {
    failures: Vec<Failure>,
    /// Bit q set: requests of queue q are executed but not completed.
    pub(crate) hold: u32,
    pub(crate) held: Vec<HeldCompletion>,
    corruptions: VecDeque<Corruption>,
    /// Armed EDID fault: every GET_EDID answer is broken this way.
    pub(crate) edid: Option<EdidFault>,
    /// Armed EDID blob: every GET_EDID answer carries these bytes (cut to the response's
    /// 1024) instead of the generated EDID.
    pub(crate) edid_blob: Option<Vec<u8>>,
}

impl Faults {
    /// Arms a failure of the `n`-th next `command` (1 is the next one; 0 counts as 1).
    pub(crate) fn fail_nth(&mut self, n: u32, command: CommandType, response: ResponseType) {
        self.failures.push(Failure {
            command,
            skip: n.saturating_sub(1),
            response,
        });
    }

    /// Called once per command received: the error to answer it with, if a failure is due.
    /// Every armed failure for the type counts the command, so two armed failures fail two
    /// different commands.
    pub(crate) fn take_failure(&mut self, command: CommandType) -> Option<ResponseType> {
        let mut due = None;
        self.failures.retain_mut(|f| {
            if f.command != command {
                return true;
            }
            if f.skip > 0 {
                f.skip -= 1;
                return true;
            }
            if due.is_some() {
                // Another failure already took this command; this one waits for the next.
                return true;
            }
            due = Some(f.response);
            false
        });
        due
    }

    /// Queues a corruption for the next control-queue completion.
    pub(crate) fn corrupt(&mut self, corruption: Corruption) {
        self.corruptions.push_back(corruption);
    }

    /// The corruption for the completion being made now, if one is armed.
    pub(crate) fn take_corruption(&mut self) -> Option<Corruption> {
        self.corruptions.pop_front()
    }

    /// Disarms everything and forgets held requests.
    pub(crate) fn clear(&mut self) {
        *self = Self::default();
    }
}

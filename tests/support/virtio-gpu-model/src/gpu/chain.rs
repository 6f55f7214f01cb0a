//! Moving bytes between descriptor chains and the command processor: gathering the
//! device-readable part of a chain into one request buffer, and scattering a response over
//! the device-writable part.
//!
//! virtio-queue walks the chain (including an indirect table); this module only copies. A
//! request may be split over any number of descriptors at any byte boundary, as the spec
//! allows.

use virtio_queue::DescriptorChain;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use viogpu_common::protocol::{MemEntry, ResourceAttachBacking};

use super::MAX_BACKING_ENTRIES;

/// The most request bytes the model reads from one chain: the largest request QEMU accepts
/// (`ATTACH_BACKING` with 16384 entries) plus one entry, so a longer entry list is still seen
/// to be too long. Anything beyond is ignored, as QEMU reads only what a command needs.
const MAX_REQUEST_BYTES: usize = core::mem::size_of::<ResourceAttachBacking>()
    + (MAX_BACKING_ENTRIES as usize + 1) * core::mem::size_of::<MemEntry>();

/// One popped descriptor chain, read.
#[derive(Debug)]
pub(crate) struct Request {
    /// The head descriptor index, the id of the used element.
    pub(crate) head: u16,
    /// The device-readable bytes, concatenated.
    pub(crate) bytes: Vec<u8>,
    /// The device-writable buffers, in chain order.
    pub(crate) writable: Vec<(GuestAddress, u32)>,
    /// Every guest range the chain names (readable and writable buffers; the caller adds an
    /// indirect table), as `start..end`: memory the device uses until it completes the
    /// request.
    pub(crate) ranges: Vec<std::ops::Range<u64>>,
}

impl Request {
    /// Reads a chain. A readable descriptor outside guest memory ends the request there (the
    /// command then looks short); writable ones are only recorded here.
    pub(crate) fn read(
        chain: DescriptorChain<&GuestMemoryMmap<()>>,
        mem: &GuestMemoryMmap<()>,
    ) -> Self {
        let head = chain.head_index();
        let mut bytes = Vec::new();
        let mut writable = Vec::new();
        let mut readable_ok = true;
        let mut ranges = Vec::new();
        for desc in chain {
            let start = desc.addr().0;
            ranges.push(start..start.saturating_add(u64::from(desc.len())));
            if desc.is_write_only() {
                writable.push((desc.addr(), desc.len()));
                continue;
            }
            if !readable_ok || bytes.len() >= MAX_REQUEST_BYTES {
                continue;
            }
            let take = (desc.len() as usize).min(MAX_REQUEST_BYTES - bytes.len());
            let start = bytes.len();
            bytes.resize(start + take, 0);
            if mem.read_slice(&mut bytes[start..], desc.addr()).is_err() {
                bytes.truncate(start);
                readable_ok = false;
            }
        }
        Self {
            head,
            bytes,
            writable,
            ranges,
        }
    }
}

/// Writes `response` over `writable` in order, as far as the buffers reach (QEMU's
/// `iov_from_buf`), and returns the number of bytes written: the used length.
pub(crate) fn write_response(
    mem: &GuestMemoryMmap<()>,
    writable: &[(GuestAddress, u32)],
    response: &[u8],
) -> u32 {
    let mut written = 0usize;
    for &(addr, len) in writable {
        let Some(rest) = response.get(written..) else {
            break;
        };
        if rest.is_empty() {
            break;
        }
        let n = rest.len().min(len as usize);
        if mem.write_slice(&rest[..n], addr).is_err() {
            break;
        }
        written += n;
    }
    u32::try_from(written).unwrap_or(u32::MAX)
}

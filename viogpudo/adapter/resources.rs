//! The adapter's hardware resources as the PnP manager assigned them: a byte-level reader of
//! the translated `CM_RESOURCE_LIST` that `DxgkCbGetDeviceInformation` hands over.
//!
//! The list is opaque in the ABI mirrors (`ddi::CM_RESOURCE_LIST`) because its C definition
//! is a chain of variable-length arrays with `#pragma pack(4)` unions, which `repr(C)` cannot
//! express. It is read here as bytes, x64 layout:
//!
//! ```text
//! CM_RESOURCE_LIST              { ULONG Count; CM_FULL_RESOURCE_DESCRIPTOR List[Count] }
//! CM_FULL_RESOURCE_DESCRIPTOR   { INTERFACE_TYPE(4) BusNumber(4)
//!                                 CM_PARTIAL_RESOURCE_LIST { USHORT Version; USHORT Revision;
//!                                                            ULONG Count; descriptors[] } }
//! CM_PARTIAL_RESOURCE_DESCRIPTOR (20 bytes) { UCHAR Type; UCHAR ShareDisposition; USHORT Flags;
//!                                 union (16 bytes, at +4) }
//!   Memory / MemoryLarge:  PHYSICAL_ADDRESS Start (+4), ULONG Length (+12)
//!   Interrupt:             ULONG Level (+4) / MessageInterrupt.Translated.Level, ULONG Vector
//!                          (+8), KAFFINITY Affinity (+12)
//! ```
//!
//! Every read is bounds-checked against the length the caller vouches for; a list that claims
//! more entries than fit is an error, never an over-read. The PnP manager is trusted more than
//! the device, but a wrong length computed here would be a blue screen, so the parser is
//! defensive anyway and unit-tested against hand-built lists.

use alloc::vec::Vec;

use viogpu_common::{Error, Result};

/// `CmResourceTypePort`.
pub const CM_RESOURCE_TYPE_PORT: u8 = 1;
/// `CmResourceTypeInterrupt`.
pub const CM_RESOURCE_TYPE_INTERRUPT: u8 = 2;
/// `CmResourceTypeMemory`.
pub const CM_RESOURCE_TYPE_MEMORY: u8 = 3;
/// `CmResourceTypeMemoryLarge`.
pub const CM_RESOURCE_TYPE_MEMORY_LARGE: u8 = 7;
/// Interrupt descriptor flag: the interrupt is message-signaled (MSI or MSI-X).
pub const CM_RESOURCE_INTERRUPT_MESSAGE: u16 = 0x0002;
/// MemoryLarge flag: `Length40` (length in units of 256 bytes).
pub const CM_RESOURCE_MEMORY_LARGE_40: u16 = 0x0200;
/// MemoryLarge flag: `Length48` (length in units of 64 KiB).
pub const CM_RESOURCE_MEMORY_LARGE_48: u16 = 0x0400;
/// MemoryLarge flag: `Length64` (length in units of 4 GiB).
pub const CM_RESOURCE_MEMORY_LARGE_64: u16 = 0x0800;

/// Size of the `CM_RESOURCE_LIST` header (`Count`).
const LIST_HEADER: usize = 4;
/// Size of a `CM_FULL_RESOURCE_DESCRIPTOR` before its partial descriptors.
const FULL_HEADER: usize = 16;
/// Size of one `CM_PARTIAL_RESOURCE_DESCRIPTOR`.
pub const PARTIAL_LEN: usize = 20;
/// Upper bound on descriptors walked, whatever the counts say (a PCI function has at most
/// six BARs, an expansion ROM and a few interrupt messages).
const MAX_DESCRIPTORS: usize = 256;

/// One memory range (a BAR) of the adapter, translated to a CPU physical address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryResource {
    /// Physical address of the first byte.
    pub start: u64,
    /// Length in bytes.
    pub length: u64,
}

/// One interrupt resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InterruptResource {
    /// `Flags` of the descriptor.
    pub flags: u16,
    /// True when message-signaled (`CM_RESOURCE_INTERRUPT_MESSAGE`).
    pub message: bool,
}

/// What the adapter got from PnP.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    /// Memory ranges in list order.
    pub memory: Vec<MemoryResource>,
    /// Interrupt descriptors in list order.
    pub interrupts: Vec<InterruptResource>,
    /// Number of I/O port ranges (unused by the driver; counted for diagnostics).
    pub ports: usize,
}

impl Resources {
    /// True when the OS granted message-signaled interrupts.
    pub fn message_signaled(&self) -> bool {
        self.interrupts.iter().any(|i| i.message)
    }

    /// The memory range starting exactly at `start` (how a BAR address read from config
    /// space is matched to its translated resource on a machine where bus and CPU physical
    /// addresses agree, as on every x86 and arm64 virtual machine).
    pub fn memory_at(&self, start: u64) -> Option<MemoryResource> {
        self.memory.iter().copied().find(|m| m.start == start)
    }
}

fn read_u8(bytes: &[u8], at: usize) -> Result<u8> {
    bytes.get(at).copied().ok_or(Error::OutOfBounds)
}

fn read_u16(bytes: &[u8], at: usize) -> Result<u16> {
    let end = at.checked_add(2).ok_or(Error::OutOfBounds)?;
    let b: [u8; 2] = bytes
        .get(at..end)
        .and_then(|s| s.try_into().ok())
        .ok_or(Error::OutOfBounds)?;
    Ok(u16::from_le_bytes(b))
}

fn read_u32(bytes: &[u8], at: usize) -> Result<u32> {
    let end = at.checked_add(4).ok_or(Error::OutOfBounds)?;
    let b: [u8; 4] = bytes
        .get(at..end)
        .and_then(|s| s.try_into().ok())
        .ok_or(Error::OutOfBounds)?;
    Ok(u32::from_le_bytes(b))
}

fn read_u64(bytes: &[u8], at: usize) -> Result<u64> {
    let end = at.checked_add(8).ok_or(Error::OutOfBounds)?;
    let b: [u8; 8] = bytes
        .get(at..end)
        .and_then(|s| s.try_into().ok())
        .ok_or(Error::OutOfBounds)?;
    Ok(u64::from_le_bytes(b))
}

/// The length of a `CmResourceTypeMemoryLarge` descriptor: the 32-bit field scaled by the
/// shift its flags select (none of the three flags: an unscaled length).
fn large_length(raw: u32, flags: u16) -> u64 {
    let shift = if flags & CM_RESOURCE_MEMORY_LARGE_64 != 0 {
        32
    } else if flags & CM_RESOURCE_MEMORY_LARGE_48 != 0 {
        16
    } else if flags & CM_RESOURCE_MEMORY_LARGE_40 != 0 {
        8
    } else {
        0
    };
    u64::from(raw) << shift
}

/// Parses a translated `CM_RESOURCE_LIST` of `bytes.len()` bytes.
///
/// [`Error::OutOfBounds`] when a count claims more than the bytes hold,
/// [`Error::InvalidArgument`] when the counts exceed a sane bound. Descriptor types other than
/// port, interrupt and memory are skipped.
pub fn parse(bytes: &[u8]) -> Result<Resources> {
    let full_count = usize::try_from(read_u32(bytes, 0)?).map_err(|_| Error::InvalidArgument)?;
    if full_count > MAX_DESCRIPTORS {
        return Err(Error::InvalidArgument);
    }
    let mut out = Resources::default();
    let mut walked = 0usize;
    let mut at = LIST_HEADER;
    for _ in 0..full_count {
        // PartialResourceList.Count sits at +12 of the full descriptor.
        let count_at = at.checked_add(12).ok_or(Error::OutOfBounds)?;
        let partial_count =
            usize::try_from(read_u32(bytes, count_at)?).map_err(|_| Error::InvalidArgument)?;
        walked = walked
            .checked_add(partial_count)
            .filter(|&n| n <= MAX_DESCRIPTORS)
            .ok_or(Error::InvalidArgument)?;
        at = at.checked_add(FULL_HEADER).ok_or(Error::OutOfBounds)?;
        let block = partial_count
            .checked_mul(PARTIAL_LEN)
            .and_then(|len| at.checked_add(len))
            .ok_or(Error::OutOfBounds)?;
        if block > bytes.len() {
            return Err(Error::OutOfBounds);
        }
        for _ in 0..partial_count {
            parse_partial(bytes, at, &mut out)?;
            at += PARTIAL_LEN;
        }
    }
    // No shrink_to_fit: it reallocates, and a failed reallocation aborts. The list lives
    // only for the length of StartDevice.
    Ok(out)
}

fn push<T>(v: &mut Vec<T>, item: T) -> Result<()> {
    viogpu_common::fallible::try_push(v, item)
}

fn parse_partial(bytes: &[u8], at: usize, out: &mut Resources) -> Result<()> {
    let ty = read_u8(bytes, at)?;
    let flags = read_u16(bytes, at + 2)?;
    match ty {
        CM_RESOURCE_TYPE_PORT => out.ports += 1,
        CM_RESOURCE_TYPE_INTERRUPT => push(
            &mut out.interrupts,
            InterruptResource {
                flags,
                message: flags & CM_RESOURCE_INTERRUPT_MESSAGE != 0,
            },
        )?,
        CM_RESOURCE_TYPE_MEMORY | CM_RESOURCE_TYPE_MEMORY_LARGE => {
            let start = read_u64(bytes, at + 4)?;
            let raw = read_u32(bytes, at + 12)?;
            let length = if ty == CM_RESOURCE_TYPE_MEMORY_LARGE {
                large_length(raw, flags)
            } else {
                u64::from(raw)
            };
            push(&mut out.memory, MemoryResource { start, length })?;
        }
        _ => {}
    }
    Ok(())
}

/// Bytes a `CM_RESOURCE_LIST` at `list` spans, read from its own counts (the OS gives no
/// length). `None` when a count is implausible.
///
/// # Safety
/// `list` points to a valid `CM_RESOURCE_LIST` produced by the PnP manager.
pub unsafe fn list_len(list: *const u8) -> Option<usize> {
    // SAFETY: the caller guarantees a valid list, which starts with a ULONG count.
    let full_count = unsafe { core::ptr::read_unaligned(list.cast::<u32>()) } as usize;
    if full_count > MAX_DESCRIPTORS {
        return None;
    }
    let mut at = LIST_HEADER;
    let mut walked = 0usize;
    for _ in 0..full_count {
        // SAFETY: the list is valid, so each full descriptor's header (16 bytes, count at +12)
        // lies inside it at the offset computed from the preceding counts.
        let count_at = unsafe { list.add(at + 12) };
        // SAFETY: `count_at` addresses the descriptor's 4-byte count inside the list (above).
        let partial_count = unsafe { core::ptr::read_unaligned(count_at.cast::<u32>()) } as usize;
        walked = walked.checked_add(partial_count)?;
        if walked > MAX_DESCRIPTORS {
            return None;
        }
        at = at.checked_add(FULL_HEADER + partial_count * PARTIAL_LEN)?;
    }
    Some(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// List bytes of one full descriptor holding `partials`, each `(type, flags, start,
    /// length)`.
    fn build_list(partials: &[(u8, u16, u64, u32)]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&1u32.to_le_bytes());
        v.extend_from_slice(&5u32.to_le_bytes()); // InterfaceType = PCIBus
        v.extend_from_slice(&0u32.to_le_bytes()); // BusNumber
        v.extend_from_slice(&1u16.to_le_bytes()); // Version
        v.extend_from_slice(&1u16.to_le_bytes()); // Revision
        v.extend_from_slice(&(partials.len() as u32).to_le_bytes());
        for &(ty, flags, start, length) in partials {
            v.push(ty);
            v.push(3); // CmResourceShareShared
            v.extend_from_slice(&flags.to_le_bytes());
            v.extend_from_slice(&start.to_le_bytes());
            v.extend_from_slice(&length.to_le_bytes());
            v.extend_from_slice(&0u32.to_le_bytes());
        }
        v
    }

    #[test]
    fn parses_memory_interrupt_and_port() {
        let bytes = build_list(&[
            (CM_RESOURCE_TYPE_MEMORY, 0, 0xFE00_0000, 0x80_0000),
            (CM_RESOURCE_TYPE_PORT, 0, 0xC000, 0x20),
            (
                CM_RESOURCE_TYPE_INTERRUPT,
                CM_RESOURCE_INTERRUPT_MESSAGE,
                0,
                0,
            ),
            (
                CM_RESOURCE_TYPE_MEMORY_LARGE,
                CM_RESOURCE_MEMORY_LARGE_48,
                0x8_0000_0000,
                0x1,
            ),
        ]);
        let r = parse(&bytes).unwrap();
        assert_eq!(
            r.memory,
            [
                MemoryResource {
                    start: 0xFE00_0000,
                    length: 0x80_0000
                },
                MemoryResource {
                    start: 0x8_0000_0000,
                    length: 0x1_0000
                },
            ]
        );
        assert_eq!(r.ports, 1);
        assert!(r.message_signaled());
        assert_eq!(r.memory_at(0x8_0000_0000).unwrap().length, 0x1_0000);
        assert_eq!(r.memory_at(0x1234), None);
        // SAFETY: bytes is a complete list built above.
        assert_eq!(unsafe { list_len(bytes.as_ptr()) }, Some(bytes.len()));
    }

    #[test]
    fn large_lengths_scale_by_flag() {
        assert_eq!(large_length(3, 0), 3);
        assert_eq!(large_length(3, CM_RESOURCE_MEMORY_LARGE_40), 3 << 8);
        assert_eq!(large_length(3, CM_RESOURCE_MEMORY_LARGE_48), 3 << 16);
        assert_eq!(large_length(3, CM_RESOURCE_MEMORY_LARGE_64), 3 << 32);
    }

    #[test]
    fn line_interrupt_is_not_message() {
        let bytes = build_list(&[(CM_RESOURCE_TYPE_INTERRUPT, 0x1, 0, 0)]);
        let r = parse(&bytes).unwrap();
        assert_eq!(r.interrupts.len(), 1);
        assert!(!r.message_signaled());
    }

    #[test]
    fn every_truncation_is_rejected_not_overread() {
        let bytes = build_list(&[
            (CM_RESOURCE_TYPE_MEMORY, 0, 0xFE00_0000, 0x1000),
            (CM_RESOURCE_TYPE_INTERRUPT, 0, 0, 0),
        ]);
        for len in 0..bytes.len() {
            assert!(parse(&bytes[..len]).is_err(), "length {len} accepted");
        }
        assert!(parse(&bytes).is_ok());
    }

    #[test]
    fn absurd_counts_are_rejected() {
        let mut bytes = build_list(&[(CM_RESOURCE_TYPE_MEMORY, 0, 1, 1)]);
        bytes[0..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(parse(&bytes), Err(Error::InvalidArgument));
        let mut bytes = build_list(&[(CM_RESOURCE_TYPE_MEMORY, 0, 1, 1)]);
        bytes[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(parse(&bytes), Err(Error::InvalidArgument));
        let mut bytes = build_list(&[(CM_RESOURCE_TYPE_MEMORY, 0, 1, 1)]);
        bytes[16..20].copy_from_slice(&2u32.to_le_bytes());
        assert_eq!(parse(&bytes), Err(Error::OutOfBounds));
    }

    #[test]
    fn empty_list_and_unknown_types() {
        assert_eq!(parse(&0u32.to_le_bytes()).unwrap(), Resources::default());
        let bytes = build_list(&[(0x81, 0, 5, 5), (CM_RESOURCE_TYPE_MEMORY, 0, 7, 8)]);
        let r = parse(&bytes).unwrap();
        assert_eq!(r.memory.len(), 1);
        assert_eq!(r.interrupts.len(), 0);
    }
}

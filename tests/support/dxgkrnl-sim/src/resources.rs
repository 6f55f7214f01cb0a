//! The translated hardware resources of the adapter as a `CM_RESOURCE_LIST` in its x64 byte
//! layout: the list the driver finds behind `DXGK_DEVICE_INFO::TranslatedResourceList`.
//!
//! The driver's ABI mirrors keep `CM_RESOURCE_LIST` opaque, so it is written here as bytes:
//! `ULONG Count` then one `CM_FULL_RESOURCE_DESCRIPTOR` (interface type, bus number, and a
//! `CM_PARTIAL_RESOURCE_LIST` of version, revision, count) followed by 20-byte
//! `CM_PARTIAL_RESOURCE_DESCRIPTOR`s (`#pragma pack(4)`: type, share disposition, flags, then a
//! 16-byte union at offset 4). Memory BARs become `CmResourceTypeMemory` descriptors (or
//! `CmResourceTypeMemoryLarge` when the length does not fit 32 bits); interrupts become one
//! level-sensitive shared line, or one latched message descriptor per MSI-X message, as the
//! PnP manager translates them. [`parse`] reads such a list back (for tests).

use crate::machine::{Bar, InterruptMode};

/// `CmResourceTypePort`.
pub const CM_RESOURCE_TYPE_PORT: u8 = 1;
/// `CmResourceTypeInterrupt`.
pub const CM_RESOURCE_TYPE_INTERRUPT: u8 = 2;
/// `CmResourceTypeMemory`.
pub const CM_RESOURCE_TYPE_MEMORY: u8 = 3;
/// `CmResourceTypeMemoryLarge`.
pub const CM_RESOURCE_TYPE_MEMORY_LARGE: u8 = 7;
/// `CmResourceShareDeviceExclusive`.
pub const CM_RESOURCE_SHARE_DEVICE_EXCLUSIVE: u8 = 1;
/// `CmResourceShareShared`.
pub const CM_RESOURCE_SHARE_SHARED: u8 = 3;
/// `CM_RESOURCE_INTERRUPT_LEVEL_SENSITIVE` (a flags value of zero).
pub const CM_RESOURCE_INTERRUPT_LEVEL_SENSITIVE: u16 = 0;
/// `CM_RESOURCE_INTERRUPT_LATCHED`.
pub const CM_RESOURCE_INTERRUPT_LATCHED: u16 = 1;
/// `CM_RESOURCE_INTERRUPT_MESSAGE`.
pub const CM_RESOURCE_INTERRUPT_MESSAGE: u16 = 2;
/// `CM_RESOURCE_MEMORY_PREFETCHABLE`.
pub const CM_RESOURCE_MEMORY_PREFETCHABLE: u16 = 0x0004;
/// `CM_RESOURCE_MEMORY_LARGE_40`: the length field counts 256-byte units.
pub const CM_RESOURCE_MEMORY_LARGE_40: u16 = 0x0200;
/// `CM_RESOURCE_MEMORY_LARGE_48`: the length field counts 64 KiB units.
pub const CM_RESOURCE_MEMORY_LARGE_48: u16 = 0x0400;
/// `CM_RESOURCE_MEMORY_LARGE_64`: the length field counts 4 GiB units.
pub const CM_RESOURCE_MEMORY_LARGE_64: u16 = 0x0800;
/// `INTERFACE_TYPE::PCIBus`.
pub const INTERFACE_TYPE_PCI_BUS: i32 = 5;

/// Size of a `CM_PARTIAL_RESOURCE_DESCRIPTOR`.
pub const PARTIAL_DESCRIPTOR_LEN: usize = 20;
/// Offset of the first partial descriptor in the list (Count + full-descriptor header).
pub const FIRST_DESCRIPTOR_OFFSET: usize = 4 + 16;

/// The translated interrupt vector of message or line 0 (made up; drivers do not use it).
const FIRST_VECTOR: u32 = 0x60;

/// One partial resource descriptor, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// A memory range (`CmResourceTypeMemory` or `CmResourceTypeMemoryLarge`).
    Memory {
        /// Physical start address.
        start: u64,
        /// Length in bytes.
        len: u64,
        /// The `Flags` word.
        flags: u16,
    },
    /// An interrupt (line or message).
    Interrupt {
        /// The `Flags` word (`CM_RESOURCE_INTERRUPT_*`).
        flags: u16,
        /// Translated level.
        level: u16,
        /// Translated vector.
        vector: u32,
        /// Processor affinity.
        affinity: u64,
    },
    /// Any other descriptor type.
    Other {
        /// The `Type` byte.
        ty: u8,
    },
}

/// The bytes of a `CM_RESOURCE_LIST` for `bars` and `interrupts`.
pub fn build(bars: &[Bar], interrupts: InterruptMode) -> Vec<u8> {
    let mut partials: Vec<[u8; PARTIAL_DESCRIPTOR_LEN]> = Vec::new();
    for bar in bars {
        partials.push(memory_descriptor(bar));
    }
    match interrupts {
        InterruptMode::Line => partials.push(interrupt_descriptor(
            CM_RESOURCE_SHARE_SHARED,
            CM_RESOURCE_INTERRUPT_LEVEL_SENSITIVE,
            FIRST_VECTOR,
        )),
        InterruptMode::Msix { messages } => {
            for m in 0..u32::from(messages) {
                partials.push(interrupt_descriptor(
                    CM_RESOURCE_SHARE_DEVICE_EXCLUSIVE,
                    CM_RESOURCE_INTERRUPT_LATCHED | CM_RESOURCE_INTERRUPT_MESSAGE,
                    FIRST_VECTOR + m,
                ));
            }
        }
    }
    let mut bytes = Vec::with_capacity(FIRST_DESCRIPTOR_OFFSET + partials.len() * 20);
    bytes.extend_from_slice(&1u32.to_le_bytes()); // one full descriptor
    bytes.extend_from_slice(&INTERFACE_TYPE_PCI_BUS.to_le_bytes());
    bytes.extend_from_slice(&0u32.to_le_bytes()); // bus number
    bytes.extend_from_slice(&1u16.to_le_bytes()); // partial list version
    bytes.extend_from_slice(&1u16.to_le_bytes()); // revision
    bytes.extend_from_slice(&(partials.len() as u32).to_le_bytes());
    for p in &partials {
        bytes.extend_from_slice(p);
    }
    bytes
}

fn memory_descriptor(bar: &Bar) -> [u8; PARTIAL_DESCRIPTOR_LEN] {
    let mut d = [0u8; PARTIAL_DESCRIPTOR_LEN];
    let mut flags = if bar.prefetchable {
        CM_RESOURCE_MEMORY_PREFETCHABLE
    } else {
        0
    };
    let length = match u32::try_from(bar.len) {
        Ok(len) => {
            d[0] = CM_RESOURCE_TYPE_MEMORY;
            len
        }
        Err(_) => {
            d[0] = CM_RESOURCE_TYPE_MEMORY_LARGE;
            let (flag, shift) = if bar.len >> 8 <= u64::from(u32::MAX) {
                (CM_RESOURCE_MEMORY_LARGE_40, 8)
            } else if bar.len >> 16 <= u64::from(u32::MAX) {
                (CM_RESOURCE_MEMORY_LARGE_48, 16)
            } else {
                (CM_RESOURCE_MEMORY_LARGE_64, 32)
            };
            flags |= flag;
            (bar.len >> shift) as u32
        }
    };
    d[1] = CM_RESOURCE_SHARE_DEVICE_EXCLUSIVE;
    d[2..4].copy_from_slice(&flags.to_le_bytes());
    d[4..12].copy_from_slice(&bar.phys.to_le_bytes());
    d[12..16].copy_from_slice(&length.to_le_bytes());
    d
}

fn interrupt_descriptor(share: u8, flags: u16, vector: u32) -> [u8; PARTIAL_DESCRIPTOR_LEN] {
    let mut d = [0u8; PARTIAL_DESCRIPTOR_LEN];
    d[0] = CM_RESOURCE_TYPE_INTERRUPT;
    d[1] = share;
    d[2..4].copy_from_slice(&flags.to_le_bytes());
    // Translated { USHORT Level; USHORT Group; ULONG Vector; KAFFINITY Affinity }.
    d[4..6].copy_from_slice(&(vector as u16).to_le_bytes());
    d[6..8].copy_from_slice(&0u16.to_le_bytes());
    d[8..12].copy_from_slice(&vector.to_le_bytes());
    d[12..20].copy_from_slice(&1u64.to_le_bytes());
    d
}

/// Decodes the partial descriptors of every full descriptor in a `CM_RESOURCE_LIST`; `None`
/// when the bytes are shorter than the counts say.
pub fn parse(bytes: &[u8]) -> Option<Vec<Resource>> {
    let u16_at = |at: usize| -> Option<u16> {
        Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
    };
    let u32_at = |at: usize| -> Option<u32> {
        Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
    };
    let u64_at = |at: usize| -> Option<u64> {
        Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
    };
    let mut out = Vec::new();
    let mut at = 4;
    for _ in 0..u32_at(0)? {
        let count = u32_at(at + 12)?;
        at += 16;
        for _ in 0..count {
            let ty = *bytes.get(at)?;
            let flags = u16_at(at + 2)?;
            out.push(match ty {
                CM_RESOURCE_TYPE_MEMORY => Resource::Memory {
                    start: u64_at(at + 4)?,
                    len: u32_at(at + 12)?.into(),
                    flags,
                },
                CM_RESOURCE_TYPE_MEMORY_LARGE => {
                    let shift = if flags & CM_RESOURCE_MEMORY_LARGE_40 != 0 {
                        8
                    } else if flags & CM_RESOURCE_MEMORY_LARGE_48 != 0 {
                        16
                    } else {
                        32
                    };
                    Resource::Memory {
                        start: u64_at(at + 4)?,
                        len: u64::from(u32_at(at + 12)?) << shift,
                        flags,
                    }
                }
                CM_RESOURCE_TYPE_INTERRUPT => Resource::Interrupt {
                    flags,
                    level: u16_at(at + 4)?,
                    vector: u32_at(at + 8)?,
                    affinity: u64_at(at + 12)?,
                },
                ty => Resource::Other { ty },
            });
            at += PARTIAL_DESCRIPTOR_LEN;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BAR1: Bar = Bar {
        index: 1,
        phys: 0xFEA0_0000,
        len: 0x1000,
        is_64bit: false,
        prefetchable: false,
    };
    const BAR4: Bar = Bar {
        index: 4,
        phys: 0xFE80_0000,
        len: 0x4000,
        is_64bit: true,
        prefetchable: true,
    };

    #[test]
    fn layout_matches_the_x64_structures_byte_for_byte() {
        let bytes = build(&[BAR1, BAR4], InterruptMode::Line);
        assert_eq!(bytes.len(), 4 + 16 + 3 * 20);
        // CM_RESOURCE_LIST.Count, then the full descriptor header.
        assert_eq!(&bytes[0..4], &[1, 0, 0, 0]);
        assert_eq!(&bytes[4..8], &[5, 0, 0, 0], "PCIBus");
        assert_eq!(&bytes[8..12], &[0, 0, 0, 0], "bus 0");
        assert_eq!(&bytes[12..16], &[1, 0, 1, 0], "version 1, revision 1");
        assert_eq!(&bytes[16..20], &[3, 0, 0, 0], "three partial descriptors");
        // BAR 1: Memory, exclusive, read-write, Start at +4, Length at +12.
        let d = &bytes[20..40];
        assert_eq!(&d[0..4], &[3, 1, 0, 0]);
        assert_eq!(&d[4..12], &0xFEA0_0000u64.to_le_bytes());
        assert_eq!(&d[12..16], &0x1000u32.to_le_bytes());
        assert_eq!(&d[16..20], &[0; 4]);
        // BAR 4: prefetchable.
        let d = &bytes[40..60];
        assert_eq!(&d[0..4], &[3, 1, 4, 0]);
        assert_eq!(&d[4..12], &0xFE80_0000u64.to_le_bytes());
        // The line interrupt: shared, level sensitive, vector at +8, affinity at +12.
        let d = &bytes[60..80];
        assert_eq!(&d[0..4], &[2, 3, 0, 0]);
        assert_eq!(&d[8..12], &FIRST_VECTOR.to_le_bytes());
        assert_eq!(&d[12..20], &1u64.to_le_bytes());
    }

    #[test]
    fn msix_gets_one_latched_message_descriptor_per_message() {
        let bytes = build(&[BAR4], InterruptMode::Msix { messages: 3 });
        let parsed = parse(&bytes).unwrap();
        assert_eq!(parsed.len(), 4);
        for (i, r) in parsed[1..].iter().enumerate() {
            assert_eq!(
                *r,
                Resource::Interrupt {
                    flags: CM_RESOURCE_INTERRUPT_LATCHED | CM_RESOURCE_INTERRUPT_MESSAGE,
                    level: (FIRST_VECTOR + i as u32) as u16,
                    vector: FIRST_VECTOR + i as u32,
                    affinity: 1,
                }
            );
        }
    }

    #[test]
    fn huge_bars_use_memory_large_with_the_right_unit() {
        let big = |len| Bar {
            len,
            phys: 0x80_0000_0000,
            ..BAR4
        };
        for (len, flag) in [
            (0x2_0000_0000, CM_RESOURCE_MEMORY_LARGE_40),
            (0xFF_0000_0000, CM_RESOURCE_MEMORY_LARGE_40),
            (0x100_0000_0000, CM_RESOURCE_MEMORY_LARGE_48),
            (0x1000_0000_0000, CM_RESOURCE_MEMORY_LARGE_48),
            (0x100_0000_0000_0000, CM_RESOURCE_MEMORY_LARGE_64),
        ] {
            let bytes = build(&[big(len)], InterruptMode::Line);
            assert_eq!(bytes[20], CM_RESOURCE_TYPE_MEMORY_LARGE);
            let flags = u16::from_le_bytes([bytes[22], bytes[23]]);
            assert_eq!(
                flags,
                flag | CM_RESOURCE_MEMORY_PREFETCHABLE,
                "len {len:#x}"
            );
            assert_eq!(
                parse(&bytes).unwrap()[0],
                Resource::Memory {
                    start: 0x80_0000_0000,
                    len,
                    flags
                }
            );
        }
    }

    #[test]
    fn parse_refuses_truncated_lists() {
        let bytes = build(&[BAR1, BAR4], InterruptMode::Line);
        for cut in [0, 3, 19, 21, 79] {
            assert_eq!(parse(&bytes[..cut]), None, "cut at {cut}");
        }
        assert_eq!(parse(&bytes).unwrap().len(), 3);
    }
}

//! DxgkDdiQueryAdapterInfo: the driver capabilities a display-only driver reports.
//!
//! `DXGKQAITYPE_DRIVERCAPS` gets a zeroed `DXGK_DRIVERCAPS` with the pointer limits (64x64;
//! monochrome, colour and masked-colour shapes, or no pointer caps at all when the
//! `HardwareCursor` registry value is 0, which makes Windows draw a software cursor),
//! `HighestAcceptableAddress` = all ones (DMA memory may lie anywhere), `SupportNonVGA` (this
//! is not a VGA device, and it enables StopDeviceAndReleasePostDisplayOwnership),
//! `SupportSmoothRotation` and WDDM 1.2. Every other type, including
//! `DXGKQAITYPE_DISPLAY_DRIVERCAPS_EXTENSION` (a WDDM 2.x query a WIN8 driver does not answer),
//! is `STATUS_NOT_SUPPORTED`.

use super::{Adapter, DdiResult, DXGKDDI_WDDMV1_2};
use crate::ddi::*;
use viogpu_common::cursor::CURSOR_SIZE;

/// The capabilities, with or without the hardware pointer.
pub fn driver_caps(hardware_cursor: bool) -> DXGK_DRIVERCAPS {
    let mut caps = DXGK_DRIVERCAPS {
        HighestAcceptableAddress: PHYSICAL_ADDRESS::new(-1),
        SupportNonVGA: 1,
        SupportSmoothRotation: 1,
        WDDMVersion: DXGKDDI_WDDMV1_2,
        ..Default::default()
    };
    if hardware_cursor {
        caps.MaxPointerWidth = CURSOR_SIZE;
        caps.MaxPointerHeight = CURSOR_SIZE;
        caps.PointerCaps.set_monochrome(true);
        caps.PointerCaps.set_color(true);
        caps.PointerCaps.set_masked_color(true);
    }
    caps
}

/// Answers one query into `out` (the OS's output buffer).
pub fn query(
    kind: DXGK_QUERYADAPTERINFOTYPE,
    hardware_cursor: bool,
    out: &mut [u8],
) -> DdiResult<()> {
    match kind {
        DXGKQAITYPE_DRIVERCAPS => {
            let size = core::mem::size_of::<DXGK_DRIVERCAPS>();
            let dst = out.get_mut(..size).ok_or(STATUS_BUFFER_TOO_SMALL)?;
            dst.fill(0);
            // SAFETY: `dst` is `size_of::<DXGK_DRIVERCAPS>()` writable bytes (checked above);
            // an unaligned write needs no alignment.
            unsafe {
                core::ptr::write_unaligned(
                    dst.as_mut_ptr().cast::<DXGK_DRIVERCAPS>(),
                    driver_caps(hardware_cursor),
                )
            };
            Ok(())
        }
        _ => Err(STATUS_NOT_SUPPORTED),
    }
}

impl Adapter {
    /// DxgkDdiQueryAdapterInfo.
    pub fn query_adapter_info(
        &self,
        kind: DXGK_QUERYADAPTERINFOTYPE,
        out: &mut [u8],
    ) -> DdiResult<()> {
        query(kind, self.hardware_cursor, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps_from(bytes: &[u8]) -> DXGK_DRIVERCAPS {
        assert_eq!(bytes.len(), core::mem::size_of::<DXGK_DRIVERCAPS>());
        // SAFETY: exactly size_of bytes; every bit pattern of the integer fields is valid.
        unsafe { core::ptr::read_unaligned(bytes.as_ptr().cast::<DXGK_DRIVERCAPS>()) }
    }

    #[test]
    fn driver_caps_fill_exactly_the_struct() {
        let size = core::mem::size_of::<DXGK_DRIVERCAPS>();
        assert_eq!(size, 544);
        let mut out = alloc::vec![0xAAu8; size + 8];
        query(DXGKQAITYPE_DRIVERCAPS, true, &mut out).unwrap();
        assert!(
            out[size..].iter().all(|&b| b == 0xAA),
            "wrote past the struct"
        );
        let caps = caps_from(&out[..size]);
        assert_eq!(caps.MaxPointerWidth, 64);
        assert_eq!(caps.MaxPointerHeight, 64);
        assert!(caps.PointerCaps.monochrome());
        assert!(caps.PointerCaps.color());
        assert!(caps.PointerCaps.masked_color());
        assert_eq!(caps.HighestAcceptableAddress.QuadPart, -1);
        assert_eq!(caps.SupportNonVGA, 1);
        assert_eq!(caps.SupportSmoothRotation, 1);
        assert_eq!(caps.WDDMVersion, DXGK_WDDMVERSION(0x1200));
        assert_eq!(caps.PresentationCaps.Value, 0);
    }

    #[test]
    fn software_cursor_reports_no_pointer_caps() {
        let caps = driver_caps(false);
        assert_eq!(caps.MaxPointerWidth, 0);
        assert_eq!(caps.PointerCaps.Value, 0);
        assert_eq!(caps.SupportNonVGA, 1);
    }

    #[test]
    fn small_buffer_and_other_types() {
        let mut out = alloc::vec![0u8; 543];
        assert_eq!(
            query(DXGKQAITYPE_DRIVERCAPS, true, &mut out),
            Err(STATUS_BUFFER_TOO_SMALL)
        );
        assert!(out.iter().all(|&b| b == 0));
        let mut out = alloc::vec![0u8; 4096];
        for kind in [
            DXGKQAITYPE_DISPLAY_DRIVERCAPS_EXTENSION,
            DXGKQAITYPE_QUERYSEGMENT,
            DXGKQAITYPE_UMDRIVERPRIVATE,
            DXGK_QUERYADAPTERINFOTYPE(1234),
        ] {
            assert_eq!(query(kind, true, &mut out), Err(STATUS_NOT_SUPPORTED));
        }
    }
}

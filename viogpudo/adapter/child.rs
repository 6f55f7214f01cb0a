//! The adapter's children (one video output per scanout): DxgkDdiQueryChildRelations,
//! DxgkDdiQueryChildStatus and DxgkDdiQueryDeviceDescriptor (the monitor's EDID).
//!
//! A child is connected when the device reports its scanout enabled, when the resolution
//! agent gave it a custom size, and always for child 0 (so a VM with a closed or hidden
//! display window still has a desktop). The descriptor is the EDID the device returned for
//! the scanout if it parses; when the device has none (no `VIRTIO_GPU_F_EDID`, an empty
//! answer) or one that fails the driver's own checks (checksums, extension blocks), it is
//! one generated for the preferred size, so Windows always sees the modes this driver offers.

use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use super::{Adapter, DdiResult, Head, State};
use crate::ddi::*;
use crate::vidpn::VidPnHost;

/// The child descriptor of scanout `index`, as KMDOD reports its outputs.
pub fn child_descriptor(index: u32) -> DXGK_CHILD_DESCRIPTOR {
    let mut d = DXGK_CHILD_DESCRIPTOR {
        ChildDeviceType: TypeVideoOutput,
        ..Default::default()
    };
    d.ChildCapabilities.HpdAwareness = HpdAwarenessInterruptible;
    d.ChildCapabilities.Type.InterfaceTechnology = D3DKMDT_VOT_OTHER;
    d.ChildCapabilities.Type.MonitorOrientationAwareness = D3DKMDT_MOA_NONE;
    d.ChildCapabilities.Type.SupportsSdtvModes = 0;
    d.AcpiUid = 0;
    d.ChildUid = index;
    d
}

/// Fills `out` (the OS array, `NumberOfChildren + 1` entries) with one descriptor per child
/// and a zeroed terminator when there is room. `STATUS_BUFFER_TOO_SMALL` when the children do
/// not fit.
pub fn fill_child_relations(out: &mut [DXGK_CHILD_DESCRIPTOR], children: u32) -> DdiResult<()> {
    let n = children as usize;
    if out.len() < n {
        return Err(STATUS_BUFFER_TOO_SMALL);
    }
    for (slot, index) in out.iter_mut().zip(0..children) {
        *slot = child_descriptor(index);
    }
    if let Some(terminator) = out.get_mut(n) {
        *terminator = DXGK_CHILD_DESCRIPTOR::default();
    }
    Ok(())
}

/// Copies the part of `descriptor` at `offset` into `out`: the number of bytes copied, or
/// `STATUS_MONITOR_NO_MORE_DESCRIPTOR_DATA` when `offset` is at or past its end.
pub fn copy_descriptor(descriptor: &[u8], offset: u32, out: &mut [u8]) -> DdiResult<usize> {
    let offset = offset as usize;
    let rest = descriptor
        .get(offset..)
        .filter(|r| !r.is_empty())
        .ok_or(STATUS_MONITOR_NO_MORE_DESCRIPTOR_DATA)?;
    let n = rest.len().min(out.len());
    if let (Some(dst), Some(src)) = (out.get_mut(..n), rest.get(..n)) {
        dst.copy_from_slice(src);
    }
    Ok(n)
}

pub(super) fn is_connected(index: usize, head: &Head) -> bool {
    index == 0 || head.display.is_some() || head.custom.is_some()
}

/// The EDID shown to Windows for a head: the device's, else one generated for its preferred
/// mode.
pub(super) fn descriptor_of(head: &Head) -> Option<Vec<u8>> {
    // A custom size (escape, or the persisted setting) is what the monitor should prefer:
    // describe it, so that Windows picks it.
    if let Some((w, h)) = head.custom {
        return viogpu_common::edid::build(w, h).ok();
    }
    // Only an EDID that parses: Windows must never get one this driver itself rejects.
    let valid = |e: &&Vec<u8>| e.len() >= 128 && viogpu_common::edid::parse(e).is_ok();
    if let Some(edid) = head.edid.as_ref().filter(valid) {
        return viogpu_common::fallible::try_to_vec(edid).ok();
    }
    let mode = head.modes.preferred()?;
    viogpu_common::edid::build(mode.width, mode.height).ok()
}

impl Adapter {
    /// Recomputes the connected-children masks the DPC uses.
    pub(super) fn update_connected_mask(&self, state: &State) {
        let mask_of = |keep: &dyn Fn(usize, &Head) -> bool| {
            state
                .heads
                .iter()
                .enumerate()
                .take(u32::BITS as usize)
                .filter(|(i, h)| keep(*i, h))
                .fold(0u32, |m, (i, _)| m | (1 << i))
        };
        self.connected_mask
            .store(mask_of(&|i, h| is_connected(i, h)), Ordering::Release);
        self.forced_mask.store(
            mask_of(&|i, h| i == 0 || h.custom.is_some()),
            Ordering::Release,
        );
    }

    /// DxgkDdiQueryChildRelations.
    pub fn query_child_relations(&self, out: &mut [DXGK_CHILD_DESCRIPTOR]) -> DdiResult<()> {
        fill_child_relations(out, self.num_sources())
    }

    /// DxgkDdiQueryChildStatus: fills `status` for its `ChildUid`.
    pub fn query_child_status(&self, status: &mut DXGK_CHILD_STATUS) -> DdiResult<()> {
        if !self.is_known_id(status.ChildUid) {
            return Err(STATUS_INVALID_PARAMETER);
        }
        if status.Type == StatusConnection {
            {
                // The same answer a commit's connectivity check gets: the connections last
                // indicated or read (a failed re-read keeps them, see
                // `refresh_displays_if_stale`), not stale display info.
                status.set_hot_plug_connected(self.target_connected(status.ChildUid));
                Ok(())
            }
        } else if status.Type == StatusRotation {
            // D3DKMDT_MOA_NONE was reported, so the OS has no reason to ask.
            Err(STATUS_INVALID_PARAMETER)
        } else {
            Err(STATUS_NOT_SUPPORTED)
        }
    }

    /// DxgkDdiQueryDeviceDescriptor: copies `DescriptorLength` bytes of the child's EDID from
    /// `DescriptorOffset` into `out`; returns the bytes copied.
    pub fn query_device_descriptor(
        &self,
        child: u32,
        offset: u32,
        out: &mut [u8],
    ) -> DdiResult<usize> {
        if !self.is_known_id(child) {
            return Err(STATUS_INVALID_PARAMETER);
        }
        self.refresh_displays_if_stale();
        let descriptor = {
            let state = self.state.lock();
            let head = state
                .heads
                .get(child as usize)
                .ok_or(STATUS_INVALID_PARAMETER)?;
            descriptor_of(head).ok_or(STATUS_MONITOR_NO_DESCRIPTOR)?
        };
        copy_descriptor(&descriptor, offset, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptors_are_video_outputs_with_interruptible_hpd() {
        let mut out = [DXGK_CHILD_DESCRIPTOR::default(); 4];
        out[3].ChildUid = 99;
        fill_child_relations(&mut out, 3).unwrap();
        for (i, d) in out.iter().take(3).enumerate() {
            assert_eq!(d.ChildDeviceType, TypeVideoOutput);
            assert_eq!(d.ChildUid, i as u32);
            assert_eq!(d.ChildCapabilities.HpdAwareness, HpdAwarenessInterruptible);
            assert_eq!(
                d.ChildCapabilities.Type.InterfaceTechnology,
                D3DKMDT_VOT_OTHER
            );
            assert_eq!(
                d.ChildCapabilities.Type.MonitorOrientationAwareness,
                D3DKMDT_MOA_NONE
            );
        }
        assert_eq!(out[3].ChildUid, 0, "terminator zeroed");
        assert_eq!(out[3].ChildDeviceType, TypeUninitialized);
    }

    #[test]
    fn child_relations_too_small() {
        let mut out = [DXGK_CHILD_DESCRIPTOR::default(); 2];
        assert_eq!(
            fill_child_relations(&mut out, 3),
            Err(STATUS_BUFFER_TOO_SMALL)
        );
        // Exactly the children, no room for the terminator: still fine.
        let mut out = [DXGK_CHILD_DESCRIPTOR::default(); 3];
        assert_eq!(fill_child_relations(&mut out, 3), Ok(()));
    }

    #[test]
    fn descriptor_copy_offsets() {
        let edid: Vec<u8> = (0..=255u8).collect();
        let mut out = [0u8; 128];
        assert_eq!(copy_descriptor(&edid, 0, &mut out), Ok(128));
        assert_eq!(out[5], 5);
        assert_eq!(copy_descriptor(&edid, 128, &mut out), Ok(128));
        assert_eq!(out[0], 128);
        let mut big = [0u8; 300];
        assert_eq!(copy_descriptor(&edid, 200, &mut big), Ok(56));
        assert_eq!(big[55], 255);
        assert_eq!(
            copy_descriptor(&edid, 256, &mut out),
            Err(STATUS_MONITOR_NO_MORE_DESCRIPTOR_DATA)
        );
        assert_eq!(
            copy_descriptor(&edid, u32::MAX, &mut out),
            Err(STATUS_MONITOR_NO_MORE_DESCRIPTOR_DATA)
        );
    }

    #[test]
    fn generated_descriptor_when_device_has_none() {
        let mut head = Head::new(1);
        head.display = Some((1920, 1080));
        head.rebuild_modes();
        let edid = descriptor_of(&head).unwrap();
        let parsed = viogpu_common::edid::parse(&edid).unwrap();
        let preferred = parsed.preferred.unwrap();
        assert_eq!((preferred.width, preferred.height), (1920, 1080));
        head.edid = Some(alloc::vec![1, 2, 3]);
        // Too short to be an EDID: still the generated one.
        assert_eq!(descriptor_of(&head).unwrap(), edid);
        assert!(is_connected(0, &Head::new(0)));
        assert!(!is_connected(1, &Head::new(1)));
        assert!(is_connected(1, &head));
    }
}

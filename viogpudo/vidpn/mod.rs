//! Video present network (VidPN) negotiation: the driver's half of the display-mode dialogue
//! with dxgkrnl's VidPN manager.
//!
//! The adapter has `n` sources and `n` targets and one fixed wiring: source `i` shows on
//! target `i` (one virtio-gpu scanout each). The OS proposes VidPNs (topologies of paths plus
//! pinned source/target modes); the functions here answer whether a VidPN is supported, fill
//! the un-pinned mode sets with the modes that fit the pinned ones (cofunctional modality),
//! turn a committed VidPN into [`SourceCommit`]s that the adapter applies, and offer the
//! monitor modes. The adapter supplies what the hardware can do through [`VidPnHost`].
//!
//! Orientation rule: a path's target mode is what the monitor scans out; its source mode is
//! the desktop surface, whose width and height are swapped when the path rotates by 90 or 270
//! degrees (the driver rotates while copying into the framebuffer). Scaling is identity only
//! (centered is accepted because source and target always have the same size).
//!
//! Every OS interface table, callback and returned pointer is checked before use; a missing
//! callback or a null result is `STATUS_GRAPHICS_INTERNAL_ERROR`, never a crash.

extern crate alloc;

mod cofunc;
mod commit;
mod iface;
mod modes;
mod monitor;

pub use cofunc::{enum_cofunc_modality, recommend_functional_vidpn};
pub use commit::{
    commit_vidpn, is_supported_vidpn, query_vidpn_hw_capability, update_active_vidpn_present_path,
};
pub use monitor::recommend_monitor_modes;

use crate::ddi::*;
use viogpu_common::modes::ModeList;

/// What the adapter tells the VidPN logic about its sources and monitors.
pub trait VidPnHost {
    /// Number of sources = targets (one target per source, identity mapping).
    fn source_count(&self) -> u32;
    /// Modes the monitor on `target` supports, preferred first (None: unknown target).
    fn target_modes(&self, target: u32) -> Option<ModeList>;
    /// Whether a monitor is connected to `target` (the child's connection as the driver
    /// reports it to the OS).
    fn target_connected(&self, target: u32) -> bool;
    /// The source mode currently on screen on `source` (desktop orientation).
    fn current_mode(&self, source: u32) -> Option<(u32, u32)>;
    /// The rotation currently applied on `source`; kept when a path update leaves the
    /// rotation unspecified. Identity unless the adapter says otherwise.
    fn current_rotation(&self, _source: u32) -> Rotation {
        Rotation::Identity
    }
}

/// What CommitVidPn / UpdateActiveVidPnPresentPath decided, for the adapter to apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SourceCommit {
    /// The source (= scanout index).
    pub source: u32,
    /// The target the source is shown on (equal to `source`).
    pub target: u32,
    /// Source mode (width, height) in desktop orientation; `None`: no path, disable.
    pub mode: Option<(u32, u32)>,
    /// Rotation from the desktop surface to the scanout.
    pub rotation: Rotation,
}

/// Rotation of a present path: the core's type, which the blit implements.
pub use viogpu_common::blit::Rotation;

/// Conversions between [`Rotation`] and the DDI's `D3DKMDT_VIDPN_PRESENT_PATH_ROTATION`.
pub trait RotationDdi: Sized {
    /// The rotation a pinned path value names; `None` for values that are not a pinned
    /// rotation we perform (unpinned, unspecified, the WDDM 1.3 offset rotations, garbage).
    fn from_ddi(value: D3DKMDT_VIDPN_PRESENT_PATH_ROTATION) -> Option<Self>;
    /// The `D3DKMDT_VIDPN_PRESENT_PATH_ROTATION` value of this rotation.
    fn to_ddi(self) -> D3DKMDT_VIDPN_PRESENT_PATH_ROTATION;
    /// The size on the other side of a path with this rotation (the map is its own inverse:
    /// source → target and target → source are the same swap).
    fn orient(self, size: (u32, u32)) -> (u32, u32);
}

impl RotationDdi for Rotation {
    fn from_ddi(value: D3DKMDT_VIDPN_PRESENT_PATH_ROTATION) -> Option<Self> {
        match value {
            D3DKMDT_VPPR_IDENTITY => Some(Self::Identity),
            D3DKMDT_VPPR_ROTATE90 => Some(Self::Rotate90),
            D3DKMDT_VPPR_ROTATE180 => Some(Self::Rotate180),
            D3DKMDT_VPPR_ROTATE270 => Some(Self::Rotate270),
            _ => None,
        }
    }

    fn to_ddi(self) -> D3DKMDT_VIDPN_PRESENT_PATH_ROTATION {
        match self {
            Self::Identity => D3DKMDT_VPPR_IDENTITY,
            Self::Rotate90 => D3DKMDT_VPPR_ROTATE90,
            Self::Rotate180 => D3DKMDT_VPPR_ROTATE180,
            Self::Rotate270 => D3DKMDT_VPPR_ROTATE270,
        }
    }

    fn orient(self, (w, h): (u32, u32)) -> (u32, u32) {
        self.framebuffer_size(w, h)
    }
}

/// `Ok` for success codes (including the informational `0x401E....` ones), else the code.
fn check(status: NTSTATUS) -> Result<NTSTATUS, NTSTATUS> {
    if nt_success(status) {
        Ok(status)
    } else {
        Err(status)
    }
}

/// The status of a DDI that produced `result`.
fn status_of(result: Result<(), NTSTATUS>) -> NTSTATUS {
    match result {
        Ok(()) => STATUS_SUCCESS,
        Err(status) => status,
    }
}

//! The contract between the adapter and the VidPN logic (`crate::vidpn`, written on the
//! "vidpn" branch), as DRIVER.md fixes it: the [`VidPnHost`] trait the adapter implements, the
//! [`SourceCommit`] the commit functions return, and the functions the thunks call.
//!
//! TODO(lead): this file exists only until `viogpudo/vidpn/` lands in this branch. Then delete
//! it, make `crate::vidpn` re-export the same names, and point `thunks.rs` and `adapter/mod.rs`
//! at `crate::vidpn`. The function bodies below are stubs that answer
//! `STATUS_NOT_IMPLEMENTED`; their signatures are what the thunks need:
//! `(&dyn VidPnHost, &DXGKRNL_INTERFACE, args)` returning `Result<_, NTSTATUS>`.
//!
//! Interpretation used by the adapter: `SourceCommit::mode` is the *source* mode (the desktop
//! size the OS presents); the framebuffer the device scans out is that size with the axes
//! swapped for 90/270 degree rotations.

use crate::ddi::*;
use viogpu_common::modes::ModeList;

use super::core_glue::blit::Rotation;

/// What the VidPN logic needs to know about the adapter.
pub trait VidPnHost {
    /// Number of sources = targets (one target per source, identity mapping).
    fn source_count(&self) -> u32;
    /// Modes the monitor on `target` supports, preferred first (None: unknown target).
    fn target_modes(&self, target: u32) -> Option<ModeList>;
    /// The mode currently on screen on `source`.
    fn current_mode(&self, source: u32) -> Option<(u32, u32)>;
}

/// What CommitVidPn / UpdateActiveVidPnPresentPath decided, for the adapter to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceCommit {
    /// The source.
    pub source: u32,
    /// The target it is presented on.
    pub target: u32,
    /// The source mode; `None` when the source has no path (disable it).
    pub mode: Option<(u32, u32)>,
    /// The path's rotation.
    pub rotation: Rotation,
}

/// `DxgkDdiIsSupportedVidPn`. TODO(lead): stub.
///
/// # Safety
/// `args` and the OS interfaces it names are valid for the call.
pub unsafe fn is_supported_vidpn(
    _host: &dyn VidPnHost,
    _dxgk: &DXGKRNL_INTERFACE,
    _args: &mut DXGKARG_ISSUPPORTEDVIDPN,
) -> Result<(), NTSTATUS> {
    Err(STATUS_NOT_IMPLEMENTED)
}

/// `DxgkDdiRecommendFunctionalVidPn`. TODO(lead): stub.
///
/// # Safety
/// As [`is_supported_vidpn`].
pub unsafe fn recommend_functional_vidpn(
    _host: &dyn VidPnHost,
    _dxgk: &DXGKRNL_INTERFACE,
    _args: &DXGKARG_RECOMMENDFUNCTIONALVIDPN,
) -> Result<(), NTSTATUS> {
    Err(STATUS_NOT_IMPLEMENTED)
}

/// `DxgkDdiEnumVidPnCofuncModality`. TODO(lead): stub.
///
/// # Safety
/// As [`is_supported_vidpn`].
pub unsafe fn enum_cofunc_modality(
    _host: &dyn VidPnHost,
    _dxgk: &DXGKRNL_INTERFACE,
    _args: &DXGKARG_ENUMVIDPNCOFUNCMODALITY,
) -> Result<(), NTSTATUS> {
    Err(STATUS_NOT_IMPLEMENTED)
}

/// `DxgkDdiCommitVidPn`: the per-source decisions for the adapter to apply.
/// TODO(lead): stub.
///
/// # Safety
/// As [`is_supported_vidpn`].
pub unsafe fn commit_vidpn(
    _host: &dyn VidPnHost,
    _dxgk: &DXGKRNL_INTERFACE,
    _args: &DXGKARG_COMMITVIDPN,
) -> Result<alloc::vec::Vec<SourceCommit>, NTSTATUS> {
    Err(STATUS_NOT_IMPLEMENTED)
}

/// `DxgkDdiRecommendMonitorModes`. TODO(lead): stub.
///
/// # Safety
/// As [`is_supported_vidpn`].
pub unsafe fn recommend_monitor_modes(
    _host: &dyn VidPnHost,
    _dxgk: &DXGKRNL_INTERFACE,
    _args: &DXGKARG_RECOMMENDMONITORMODES,
) -> Result<(), NTSTATUS> {
    Err(STATUS_NOT_IMPLEMENTED)
}

/// `DxgkDdiQueryVidPnHWCapability`. TODO(lead): stub.
///
/// # Safety
/// As [`is_supported_vidpn`].
pub unsafe fn query_vidpn_hw_capability(
    _host: &dyn VidPnHost,
    _dxgk: &DXGKRNL_INTERFACE,
    _args: &mut DXGKARG_QUERYVIDPNHWCAPABILITY,
) -> Result<(), NTSTATUS> {
    Err(STATUS_NOT_IMPLEMENTED)
}

/// `DxgkDdiUpdateActiveVidPnPresentPath`: the changed path for the adapter to apply.
/// TODO(lead): stub.
///
/// # Safety
/// As [`is_supported_vidpn`].
pub unsafe fn update_active_vidpn_present_path(
    _host: &dyn VidPnHost,
    _dxgk: &DXGKRNL_INTERFACE,
    _args: &DXGKARG_UPDATEACTIVEVIDPNPRESENTPATH,
) -> Result<SourceCommit, NTSTATUS> {
    Err(STATUS_NOT_IMPLEMENTED)
}

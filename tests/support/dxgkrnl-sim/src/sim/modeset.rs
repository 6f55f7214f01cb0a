//! Mode setting the way dxgkrnl negotiates it with a display-only driver: monitor modes
//! (`DxgkDdiRecommendMonitorModes`), then for a new desktop mode a VidPN with a path and
//! pinned source/target modes, offered through `DxgkDdiEnumVidPnCofuncModality` and
//! `DxgkDdiIsSupportedVidPn` and applied with `DxgkDdiCommitVidPn`, then the source made
//! visible.
//!
//! The VidPN objects themselves (handles, topology, mode sets, their interfaces) belong to the
//! simulator's VidPN object model in [`crate::vidpn`]. Until it lands, the steps that need one
//! ([`Sim::set_mode`], [`Sim::recommend_monitor_modes`], and so [`Sim::boot`]) answer
//! [`SimError::VidPnModelMissing`]; the individual DDIs are callable with raw arguments.

use viogpudo::ddi::*;

use super::{DeviceBoot, Sim, SimError};
use crate::machine::Machine;

/// The mode a monitor without an EDID is driven at.
pub const FALLBACK_MODE: (u32, u32) = (1024, 768);

impl<M: Machine + 'static> Sim<M> {
    /// The whole boot: [`boot_device`](Self::boot_device), monitor modes for each connected
    /// target, each connected target's preferred mode on its source (identity mapping
    /// source = target), and the sources made visible.
    pub fn boot(&mut self) -> Result<DeviceBoot, SimError> {
        let boot = self.boot_device()?;
        for child in boot.children.iter().filter(|c| c.connected) {
            self.recommend_monitor_modes(child.uid)?;
        }
        for child in boot.children.iter().filter(|c| c.connected) {
            if child.uid >= boot.sources {
                continue;
            }
            let (w, h) = preferred_mode(child.edid.as_deref());
            self.set_mode(child.uid, w, h)?;
            self.set_source_visibility(child.uid, true)?;
        }
        Ok(boot)
    }

    /// `DxgkDdiRecommendMonitorModes` for `target` with the monitor source mode set built from
    /// the target's EDID; returns the set's modes (width, height) afterwards.
    pub fn recommend_monitor_modes(&mut self, target: u32) -> Result<Vec<(u32, u32)>, SimError> {
        let _ = target;
        // Needs a monitor source mode set from the VidPN object model.
        Err(SimError::VidPnModelMissing)
    }

    /// Sets `source` to `width` x `height` (identity rotation) like the display settings do.
    pub fn set_mode(&mut self, source: u32, width: u32, height: u32) -> Result<(), SimError> {
        self.set_mode_rotated(source, width, height, D3DKMDT_VPPR_IDENTITY)
    }

    /// Sets `source` to a `width` x `height` desktop shown with `rotation` on target `source`:
    /// builds a VidPN with the path source -> target and pinned source and target modes, lets
    /// the driver enumerate cofunctional modes (pivot: the source), asks IsSupportedVidPn,
    /// commits it, and remembers the mode. On any failure the previous mode stays committed.
    pub fn set_mode_rotated(
        &mut self,
        source: u32,
        width: u32,
        height: u32,
        rotation: D3DKMDT_VIDPN_PRESENT_PATH_ROTATION,
    ) -> Result<(), SimError> {
        let _ = (source, width, height, rotation);
        // With the VidPN object model: create the VidPN, add the path, pin the modes, then
        //   self.enum_cofunc_modality_raw(&DXGKARG_ENUMVIDPNCOFUNCMODALITY { hConstrainingVidPn,
        //       EnumPivotType: D3DKMDT_EPT_VIDPNSOURCE, EnumPivot: { source, target } })
        //   self.is_supported_vidpn_raw(&mut DXGKARG_ISSUPPORTEDVIDPN { hDesiredVidPn, .. })
        //   self.commit_vidpn_raw(&DXGKARG_COMMITVIDPN { hFunctionalVidPn,
        //       AffectedVidPnSourceId: source, MonitorConnectivityChecks: D3DKMDT_MCC_ENFORCE,
        //       hPrimaryAllocation: null, Flags: 0 })
        // and on success record (width, height, rotation) in self.modes[source].
        Err(SimError::VidPnModelMissing)
    }

    /// Records the mode the OS committed on `source` (used by the VidPN-driven steps).
    #[allow(dead_code)] // Called by set_mode_rotated once the VidPN object model lands.
    pub(crate) fn remember_mode(
        &mut self,
        source: u32,
        mode: Option<(u32, u32, D3DKMDT_VIDPN_PRESENT_PATH_ROTATION)>,
    ) {
        if let Some(slot) = self.modes.get_mut(source as usize) {
            *slot = mode;
        }
    }

    /// `DxgkDdiIsSupportedVidPn`; returns (NTSTATUS, IsVidPnSupported).
    pub fn is_supported_vidpn_raw(
        &mut self,
        vidpn: D3DKMDT_HVIDPN,
    ) -> Result<(NTSTATUS, bool), SimError> {
        let f = self
            .init
            .DxgkDdiIsSupportedVidPn
            .ok_or(SimError::MissingDdi("DxgkDdiIsSupportedVidPn"))?;
        let mut args = DXGKARG_ISSUPPORTEDVIDPN {
            hDesiredVidPn: vidpn,
            IsVidPnSupported: 0,
        };
        let context = self.context();
        // SAFETY: the driver's DDI with a valid argument (the handle may be bad on purpose).
        let status = self.ddi("DxgkDdiIsSupportedVidPn", || unsafe {
            f(context, &mut args)
        });
        Ok((status, args.IsVidPnSupported != 0))
    }

    /// `DxgkDdiEnumVidPnCofuncModality` with a caller-built argument; returns the NTSTATUS.
    pub fn enum_cofunc_modality_raw(
        &mut self,
        args: &DXGKARG_ENUMVIDPNCOFUNCMODALITY,
    ) -> Result<NTSTATUS, SimError> {
        let f = self
            .init
            .DxgkDdiEnumVidPnCofuncModality
            .ok_or(SimError::MissingDdi("DxgkDdiEnumVidPnCofuncModality"))?;
        let context = self.context();
        // SAFETY: the driver's DDI with the caller's argument.
        Ok(self.ddi("DxgkDdiEnumVidPnCofuncModality", || unsafe {
            f(context, args)
        }))
    }

    /// `DxgkDdiCommitVidPn` with a caller-built argument; returns the NTSTATUS.
    pub fn commit_vidpn_raw(&mut self, args: &DXGKARG_COMMITVIDPN) -> Result<NTSTATUS, SimError> {
        let f = self
            .init
            .DxgkDdiCommitVidPn
            .ok_or(SimError::MissingDdi("DxgkDdiCommitVidPn"))?;
        let context = self.context();
        // SAFETY: the driver's DDI with the caller's argument.
        Ok(self.ddi("DxgkDdiCommitVidPn", || unsafe { f(context, args) }))
    }

    /// `DxgkDdiRecommendMonitorModes` with a caller-built argument; returns the NTSTATUS.
    pub fn recommend_monitor_modes_raw(
        &mut self,
        args: &DXGKARG_RECOMMENDMONITORMODES,
    ) -> Result<NTSTATUS, SimError> {
        let f = self
            .init
            .DxgkDdiRecommendMonitorModes
            .ok_or(SimError::MissingDdi("DxgkDdiRecommendMonitorModes"))?;
        let context = self.context();
        // SAFETY: the driver's DDI with the caller's argument.
        Ok(self.ddi("DxgkDdiRecommendMonitorModes", || unsafe {
            f(context, args)
        }))
    }

    /// `DxgkDdiRecommendFunctionalVidPn` with a caller-built argument; returns the NTSTATUS.
    pub fn recommend_functional_vidpn_raw(
        &mut self,
        args: &DXGKARG_RECOMMENDFUNCTIONALVIDPN,
    ) -> Result<NTSTATUS, SimError> {
        let f = self
            .init
            .DxgkDdiRecommendFunctionalVidPn
            .ok_or(SimError::MissingDdi("DxgkDdiRecommendFunctionalVidPn"))?;
        let context = self.context();
        // SAFETY: the driver's DDI with the caller's argument.
        Ok(self.ddi("DxgkDdiRecommendFunctionalVidPn", || unsafe {
            f(context, args)
        }))
    }

    /// `DxgkDdiUpdateActiveVidPnPresentPath` with a caller-built argument; returns the
    /// NTSTATUS.
    pub fn update_active_vidpn_present_path_raw(
        &mut self,
        args: &DXGKARG_UPDATEACTIVEVIDPNPRESENTPATH,
    ) -> Result<NTSTATUS, SimError> {
        let f = self
            .init
            .DxgkDdiUpdateActiveVidPnPresentPath
            .ok_or(SimError::MissingDdi("DxgkDdiUpdateActiveVidPnPresentPath"))?;
        let context = self.context();
        // SAFETY: the driver's DDI with the caller's argument.
        Ok(self.ddi("DxgkDdiUpdateActiveVidPnPresentPath", || unsafe {
            f(context, args)
        }))
    }

    /// `DxgkDdiQueryVidPnHWCapability` with a caller-built argument; returns the NTSTATUS.
    pub fn query_vidpn_hw_capability_raw(
        &mut self,
        args: &mut DXGKARG_QUERYVIDPNHWCAPABILITY,
    ) -> Result<NTSTATUS, SimError> {
        let f = self
            .init
            .DxgkDdiQueryVidPnHWCapability
            .ok_or(SimError::MissingDdi("DxgkDdiQueryVidPnHWCapability"))?;
        let context = self.context();
        // SAFETY: the driver's DDI with the caller's argument.
        Ok(self.ddi("DxgkDdiQueryVidPnHWCapability", || unsafe {
            f(context, args)
        }))
    }
}

/// The mode a monitor prefers according to its EDID ([`FALLBACK_MODE`] without a usable one).
pub fn preferred_mode(edid: Option<&[u8]>) -> (u32, u32) {
    edid.and_then(|bytes| viogpu_common::edid::parse(bytes).ok())
        .and_then(|e| e.preferred)
        .map_or(FALLBACK_MODE, |t| (t.width, t.height))
}

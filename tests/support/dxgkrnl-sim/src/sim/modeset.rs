//! Mode setting the way dxgkrnl negotiates it with a display-only driver: monitor modes
//! (`DxgkDdiRecommendMonitorModes`), then for a new desktop mode a VidPN with a path and
//! pinned source/target modes, offered through `DxgkDdiEnumVidPnCofuncModality` and
//! `DxgkDdiIsSupportedVidPn` and applied with `DxgkDdiCommitVidPn`, then the source made
//! visible and repainted.
//!
//! The VidPN objects themselves (handles, topology, mode sets, their interfaces) are the
//! simulator's VidPN object model in [`crate::vidpn`]; the individual DDIs are also callable
//! with raw arguments for bad-input tests.

use viogpudo::ddi::*;

use super::{DeviceBoot, Phase, Sim, SimError, Surface};
use crate::adapter::Event;
use crate::machine::Machine;
use crate::vidpn::{monitor_mode, MonitorModeSet, VidPnModel};

/// The mode a monitor without an EDID is driven at.
pub const FALLBACK_MODE: (u32, u32) = (1024, 768);

/// Whether `rotation` turns the desktop by a quarter (width and height swap on the target).
fn quarter_turn(rotation: D3DKMDT_VIDPN_PRESENT_PATH_ROTATION) -> bool {
    rotation == D3DKMDT_VPPR_ROTATE90 || rotation == D3DKMDT_VPPR_ROTATE270
}

/// The target (scan-out) size of a `width` x `height` desktop shown with `rotation`.
fn target_size(
    rotation: D3DKMDT_VIDPN_PRESENT_PATH_ROTATION,
    width: u32,
    height: u32,
) -> (u32, u32) {
    if quarter_turn(rotation) {
        (height, width)
    } else {
        (width, height)
    }
}

/// A VidPN manager step the object model refused (`Result` of the model's helpers).
fn vidpn_step<T>(step: &'static str, result: Result<T, NTSTATUS>) -> Result<T, SimError> {
    result.map_err(|status| SimError::VidPn { step, status })
}

impl<M: Machine + 'static> Sim<M> {
    /// The whole boot: [`boot_device`](Self::boot_device), monitor modes for each connected
    /// target, then each connected target's preferred mode on its source (identity mapping
    /// source = target), made visible and painted.
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
        }
        self.check_vsync_control()?;
        Ok(boot)
    }

    /// A KMDOD that declares VSync control (GetScanLine and ControlInterrupt both set) gets
    /// VSync enabled once a mode is set, as dxgkrnl does, and must then report
    /// DXGK_INTERRUPT_DISPLAYONLY_VSYNC at the refresh rate: the KMDOD VSync watchdog
    /// (TdrDodVSyncDelay, 2 s by default) resets the adapter otherwise. A refusal, or no report
    /// within the watchdog's delay, is a violation.
    fn check_vsync_control(&mut self) -> Result<(), SimError> {
        if self.init.DxgkDdiControlInterrupt.is_none() {
            return Ok(());
        }
        let status = self.control_interrupt(DXGK_INTERRUPT_CRTC_VSYNC, true)?;
        if !nt_success(status) {
            self.adapter.violation(format!(
                "the driver declares VSync control (DxgkDdiGetScanLine and \
                 DxgkDdiControlInterrupt are set) but DxgkDdiControlInterrupt(CRTC_VSYNC, \
                 enable) returned {status:#x}; without VSync reports the VSync watchdog resets \
                 the adapter (leave both NULL to have dxgkrnl simulate VSync)"
            ));
            return Ok(());
        }
        let notified = |sim: &Self| {
            sim.events()
                .iter()
                .filter(|e| matches!(e, Event::NotifyInterrupt))
                .count()
        };
        let before = notified(self);
        self.machine().advance(2_100_000);
        self.adapter.deliver_interrupts();
        if notified(self) == before {
            self.adapter.violation(
                "VSync enabled but no DxgkCbNotifyInterrupt within TdrDodVSyncDelay (2 s): the \
                 KMDOD VSync watchdog resets the adapter"
                    .into(),
            );
        }
        Ok(())
    }

    /// `DxgkDdiRecommendMonitorModes` for `target`: the monitor source mode set starts with
    /// the modes of the target's EDID (as the monitor driver reads them from the descriptor,
    /// the preferred timing marked preferred), the driver adds its own; returns the set's modes
    /// (width, height) afterwards. The driver must release every mode info it took.
    pub fn recommend_monitor_modes(&mut self, target: u32) -> Result<Vec<(u32, u32)>, SimError> {
        self.expect_phase("RecommendMonitorModes", &[Phase::Started])?;
        let edid = match self.edids.get(&target) {
            Some(edid) => edid.clone(),
            None => self.query_edid(target)?,
        };
        let set = MonitorModeSet::new(self.interface.DeviceHandle, target);
        let parsed = edid
            .as_deref()
            .and_then(|bytes| viogpu_common::edid::parse(bytes).ok());
        if let Some(parsed) = parsed {
            for timing in &parsed.timings {
                let preferred = parsed.preferred.as_ref() == Some(timing);
                let mut mode = monitor_mode(timing.width, timing.height, preferred);
                let signal = &mut mode.VideoSignalInfo;
                if timing.refresh_mhz != 0 {
                    signal.VSyncFreq = D3DDDI_RATIONAL::new(timing.refresh_mhz, 1000);
                }
                if timing.interlaced {
                    signal.set_scan_line_ordering(D3DDDI_VSSLO_INTERLACED_UPPERFIELDFIRST);
                }
                set.add(mode);
            }
        }
        let args = DXGKARG_RECOMMENDMONITORMODES {
            VideoPresentTargetId: target,
            hMonitorSourceModeSet: set.handle(),
            pMonitorSourceModeSetInterface: set.interface(),
        };
        let status = self.recommend_monitor_modes_raw(&args)?;
        Self::check("DxgkDdiRecommendMonitorModes", status)?;
        if set.outstanding() != 0 {
            return Err(SimError::Contract(format!(
                "RecommendMonitorModes kept {} monitor mode infos",
                set.outstanding()
            )));
        }
        Ok(set
            .modes()
            .iter()
            .map(|m| {
                let active = m.VideoSignalInfo.ActiveSize;
                (active.cx, active.cy)
            })
            .collect())
    }

    /// Sets `source` to `width` x `height` (identity rotation) like the display settings do.
    pub fn set_mode(&mut self, source: u32, width: u32, height: u32) -> Result<(), SimError> {
        self.set_mode_rotated(source, width, height, D3DKMDT_VPPR_IDENTITY)
    }

    /// Sets `source` to a `width` x `height` desktop shown with `rotation` on target `source`,
    /// as the VidPN manager does for a display-settings change:
    /// 1. a VidPN with the path source -> target (rotation pinned), plus the paths of the
    ///    other active sources with their committed modes pinned;
    /// 2. the desktop size pinned as the source mode, `DxgkDdiEnumVidPnCofuncModality` with the
    ///    source as pivot; the target mode of the (rotated) desktop size picked from the modes
    ///    the driver offered and pinned, identity scaling pinned, and a second enumeration
    ///    with the target as pivot;
    /// 3. `DxgkDdiIsSupportedVidPn` (must say TRUE), `DxgkDdiCommitVidPn` (connectivity
    ///    checks enforced, the source as the affected one);
    /// 4. `DxgkDdiSetVidPnSourceVisibility(TRUE)` and a full-frame present of a black desktop
    ///    (what the OS repaints after a mode change).
    ///
    /// The driver must release every VidPN object it acquired in each DDI. On any failure the
    /// previously committed mode stays recorded.
    pub fn set_mode_rotated(
        &mut self,
        source: u32,
        width: u32,
        height: u32,
        rotation: D3DKMDT_VIDPN_PRESENT_PATH_ROTATION,
    ) -> Result<(), SimError> {
        self.commit_mode_rotated(source, width, height, rotation)?;
        self.present_full(source, &Surface::new(width, height))
    }

    /// Steps 1 to 3 of [`set_mode_rotated`](Self::set_mode_rotated) and the visibility of
    /// step 4, without the repaint: the caller presents the new desktop itself, once, as the
    /// OS does after a mode change (the desktop window manager redraws the whole desktop in
    /// the new mode; it does not present a black frame first).
    pub fn commit_mode_rotated(
        &mut self,
        source: u32,
        width: u32,
        height: u32,
        rotation: D3DKMDT_VIDPN_PRESENT_PATH_ROTATION,
    ) -> Result<(), SimError> {
        self.expect_phase("CommitVidPn", &[Phase::Started])?;
        let model = self.build_vidpn(source, width, height, rotation)?;
        let handle = model.handle();

        let pivot = |kind| DXGKARG_ENUMVIDPNCOFUNCMODALITY {
            hConstrainingVidPn: handle,
            EnumPivotType: kind,
            EnumPivot: DXGK_ENUM_PIVOT {
                VidPnSourceId: source,
                VidPnTargetId: source,
            },
        };
        let status = self.enum_cofunc_modality_raw(&pivot(D3DKMDT_EPT_VIDPNSOURCE))?;
        Self::check("DxgkDdiEnumVidPnCofuncModality", status)?;
        Self::check_released("DxgkDdiEnumVidPnCofuncModality", &model)?;

        let wanted = target_size(rotation, width, height);
        let offered = model
            .target_mode_infos(source)
            .into_iter()
            .find(|m| {
                let active = m.VideoSignalInfo.ActiveSize;
                (active.cx, active.cy) == wanted
            })
            .ok_or(SimError::ModeNotOffered {
                source,
                width: wanted.0,
                height: wanted.1,
            })?;
        vidpn_step(
            "pin the target mode",
            model.pin_target_mode_id(source, offered.Id),
        )?;
        let path = model.path(source, source).ok_or(SimError::VidPn {
            step: "read the path back",
            status: STATUS_GRAPHICS_PATH_NOT_IN_TOPOLOGY,
        })?;
        if path.ContentTransformation.Scaling == D3DKMDT_VPPS_UNPINNED {
            if !path.ContentTransformation.ScalingSupport.identity() {
                return Err(SimError::Contract(
                    "EnumVidPnCofuncModality offered no identity scaling".into(),
                ));
            }
            vidpn_step(
                "pin identity scaling",
                model.set_scaling(source, source, D3DKMDT_VPPS_IDENTITY),
            )?;
        }
        let status = self.enum_cofunc_modality_raw(&pivot(D3DKMDT_EPT_VIDPNTARGET))?;
        Self::check("DxgkDdiEnumVidPnCofuncModality", status)?;
        Self::check_released("DxgkDdiEnumVidPnCofuncModality", &model)?;

        let (status, supported) = self.is_supported_vidpn_raw(handle)?;
        Self::check("DxgkDdiIsSupportedVidPn", status)?;
        Self::check_released("DxgkDdiIsSupportedVidPn", &model)?;
        if !supported {
            return Err(SimError::VidPnNotSupported);
        }

        // A target the driver reported without a monitor can only be lit by a forced commit:
        // Windows checks connectivity (MCC_ENFORCE) for everything else, and the driver must
        // refuse such a path then.
        let checks = if self.adapter.connection(source) == Some(false) {
            D3DKMDT_MCC_IGNORE
        } else {
            D3DKMDT_MCC_ENFORCE
        };
        let commit = DXGKARG_COMMITVIDPN {
            hFunctionalVidPn: handle,
            AffectedVidPnSourceId: source,
            MonitorConnectivityChecks: checks,
            hPrimaryAllocation: std::ptr::null_mut(),
            Flags: DXGKARG_COMMITVIDPN_FLAGS::default(),
        };
        let status = self.commit_vidpn_raw(&commit)?;
        Self::check("DxgkDdiCommitVidPn", status)?;
        Self::check_released("DxgkDdiCommitVidPn", &model)?;
        self.remember_mode(source, Some((width, height, rotation)));
        self.set_source_visibility(source, true)
    }

    /// Commits several sources at once, as the VidPN manager does for a topology change
    /// (e.g. "extend these displays"): one functional VidPN in which each `(source, mode)` of
    /// `changes` has its path with identity rotation and scaling and `mode` pinned on both
    /// ends (`None`: no path, the source is turned off), and every other active source keeps
    /// its path with its committed modes; `DxgkDdiIsSupportedVidPn` (must say TRUE), then one
    /// `DxgkDdiCommitVidPn` for all sources (`D3DDDI_ID_ALL`, connectivity checks enforced).
    /// After it succeeded, each source given a mode is made visible and painted black. On any
    /// failure every source keeps its previously committed mode recorded.
    pub fn set_modes(&mut self, changes: &[(u32, Option<(u32, u32)>)]) -> Result<(), SimError> {
        self.expect_phase("CommitVidPn", &[Phase::Started])?;
        let mut wanted = self.modes.clone();
        for &(source, mode) in changes {
            let slot = wanted.get_mut(source as usize).ok_or(SimError::VidPn {
                step: "add the path",
                status: STATUS_GRAPHICS_INVALID_VIDEO_PRESENT_SOURCE,
            })?;
            *slot = mode.map(|(w, h)| (w, h, D3DKMDT_VPPR_IDENTITY));
        }
        let model = VidPnModel::new(self.sources);
        for (source, mode) in wanted.iter().enumerate() {
            let source = source as u32;
            let Some((w, h, r)) = *mode else { continue };
            let (tw, th) = target_size(r, w, h);
            vidpn_step("add a path", model.add_path(source, source))?;
            vidpn_step("pin its rotation", model.set_rotation(source, source, r))?;
            vidpn_step(
                "pin its scaling",
                model.set_scaling(source, source, D3DKMDT_VPPS_IDENTITY),
            )?;
            vidpn_step("pin its source mode", model.pin_source_mode(source, w, h))?;
            vidpn_step("pin its target mode", model.pin_target_mode(source, tw, th))?;
        }
        let handle = model.handle();
        let (status, supported) = self.is_supported_vidpn_raw(handle)?;
        Self::check("DxgkDdiIsSupportedVidPn", status)?;
        Self::check_released("DxgkDdiIsSupportedVidPn", &model)?;
        if !supported {
            return Err(SimError::VidPnNotSupported);
        }
        let commit = DXGKARG_COMMITVIDPN {
            hFunctionalVidPn: handle,
            AffectedVidPnSourceId: D3DDDI_ID_ALL,
            MonitorConnectivityChecks: D3DKMDT_MCC_ENFORCE,
            hPrimaryAllocation: std::ptr::null_mut(),
            Flags: DXGKARG_COMMITVIDPN_FLAGS::default(),
        };
        let status = self.commit_vidpn_raw(&commit)?;
        Self::check_released("DxgkDdiCommitVidPn", &model)?;
        Self::check("DxgkDdiCommitVidPn", status)?;
        self.modes = wanted;
        for &(source, mode) in changes {
            if let Some((w, h)) = mode {
                self.set_source_visibility(source, true)?;
                self.present_full(source, &Surface::new(w, h))?;
            }
        }
        Ok(())
    }

    /// The VidPN of a mode change on `source`: its path with `rotation` pinned and the desktop
    /// size pinned as source mode, and every other active source's path fully pinned.
    fn build_vidpn(
        &self,
        source: u32,
        width: u32,
        height: u32,
        rotation: D3DKMDT_VIDPN_PRESENT_PATH_ROTATION,
    ) -> Result<VidPnModel, SimError> {
        let model = VidPnModel::new(self.sources);
        for (other, mode) in self.modes.iter().enumerate() {
            let other = other as u32;
            let Some((w, h, r)) = *mode else { continue };
            if other == source {
                continue;
            }
            let (tw, th) = target_size(r, w, h);
            vidpn_step("add an active path", model.add_path(other, other))?;
            vidpn_step("pin its rotation", model.set_rotation(other, other, r))?;
            vidpn_step(
                "pin its scaling",
                model.set_scaling(other, other, D3DKMDT_VPPS_IDENTITY),
            )?;
            vidpn_step("pin its source mode", model.pin_source_mode(other, w, h))?;
            vidpn_step("pin its target mode", model.pin_target_mode(other, tw, th))?;
        }
        vidpn_step("add the path", model.add_path(source, source))?;
        vidpn_step(
            "pin the rotation",
            model.set_rotation(source, source, rotation),
        )?;
        vidpn_step(
            "pin the source mode",
            model.pin_source_mode(source, width, height),
        )?;
        Ok(model)
    }

    /// A DDI that took VidPN objects must have given them all back.
    fn check_released(ddi: &'static str, model: &VidPnModel) -> Result<(), SimError> {
        match model.outstanding() {
            0 => Ok(()),
            n => Err(SimError::Contract(format!(
                "{ddi} kept {n} VidPN objects acquired"
            ))),
        }
    }

    /// Records the mode the OS committed on `source`.
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
        self.call_ddi(
            "DxgkDdiEnumVidPnCofuncModality",
            self.init.DxgkDdiEnumVidPnCofuncModality,
            core::ptr::from_ref(args),
        )
    }

    /// `DxgkDdiCommitVidPn` with a caller-built argument; returns the NTSTATUS.
    ///
    /// With `D3DKMDT_MCC_ENFORCE`, a VidPN with a path to a target the OS knows has no monitor
    /// (the driver's last indication or QueryChildStatus answer) must be refused with
    /// `STATUS_GRAPHICS_INVALID_VIDPN_TOPOLOGY` (DxgkDdiCommitVidPn page); anything else is a
    /// violation.
    pub fn commit_vidpn_raw(&mut self, args: &DXGKARG_COMMITVIDPN) -> Result<NTSTATUS, SimError> {
        let unconnected: Vec<u32> = if args.MonitorConnectivityChecks == D3DKMDT_MCC_ENFORCE
            && !args.Flags.path_powered_off()
        {
            crate::vidpn::path_targets(args.hFunctionalVidPn)
                .into_iter()
                .filter(|&t| self.adapter.connection(t) == Some(false))
                .collect()
        } else {
            Vec::new()
        };
        let status = self.call_ddi(
            "DxgkDdiCommitVidPn",
            self.init.DxgkDdiCommitVidPn,
            core::ptr::from_ref(args),
        )?;
        if !unconnected.is_empty() && status != STATUS_GRAPHICS_INVALID_VIDPN_TOPOLOGY {
            self.adapter.violation(format!(
                "DxgkDdiCommitVidPn: D3DKMDT_MCC_ENFORCE and a path to target(s) \
                 {unconnected:?} without a monitor returned {status:#x}; the page requires \
                 keeping the current VidPN and STATUS_GRAPHICS_INVALID_VIDPN_TOPOLOGY"
            ));
        }
        Ok(status)
    }

    /// `DxgkDdiRecommendMonitorModes` with a caller-built argument; returns the NTSTATUS.
    pub fn recommend_monitor_modes_raw(
        &mut self,
        args: &DXGKARG_RECOMMENDMONITORMODES,
    ) -> Result<NTSTATUS, SimError> {
        self.call_ddi(
            "DxgkDdiRecommendMonitorModes",
            self.init.DxgkDdiRecommendMonitorModes,
            core::ptr::from_ref(args),
        )
    }

    /// `DxgkDdiRecommendFunctionalVidPn` with a caller-built argument; returns the NTSTATUS.
    pub fn recommend_functional_vidpn_raw(
        &mut self,
        args: &DXGKARG_RECOMMENDFUNCTIONALVIDPN,
    ) -> Result<NTSTATUS, SimError> {
        self.call_ddi(
            "DxgkDdiRecommendFunctionalVidPn",
            self.init.DxgkDdiRecommendFunctionalVidPn,
            core::ptr::from_ref(args),
        )
    }

    /// `DxgkDdiUpdateActiveVidPnPresentPath` with a caller-built argument; returns the
    /// NTSTATUS.
    pub fn update_active_vidpn_present_path_raw(
        &mut self,
        args: &DXGKARG_UPDATEACTIVEVIDPNPRESENTPATH,
    ) -> Result<NTSTATUS, SimError> {
        self.call_ddi(
            "DxgkDdiUpdateActiveVidPnPresentPath",
            self.init.DxgkDdiUpdateActiveVidPnPresentPath,
            core::ptr::from_ref(args),
        )
    }

    /// `DxgkDdiQueryVidPnHWCapability` with a caller-built argument; returns the NTSTATUS.
    pub fn query_vidpn_hw_capability_raw(
        &mut self,
        args: &mut DXGKARG_QUERYVIDPNHWCAPABILITY,
    ) -> Result<NTSTATUS, SimError> {
        self.call_ddi(
            "DxgkDdiQueryVidPnHWCapability",
            self.init.DxgkDdiQueryVidPnHWCapability,
            core::ptr::from_mut(args),
        )
    }
}

/// The mode a monitor prefers according to its EDID ([`FALLBACK_MODE`] without a usable one).
pub fn preferred_mode(edid: Option<&[u8]>) -> (u32, u32) {
    edid.and_then(|bytes| viogpu_common::edid::parse(bytes).ok())
        .and_then(|e| e.preferred)
        .map_or(FALLBACK_MODE, |t| (t.width, t.height))
}

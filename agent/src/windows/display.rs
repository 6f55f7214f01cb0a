//! The display configuration of the session the process runs in: the [`DisplayConfig`] of
//! the Windows build.
//!
//! A scanout is a VidPN source of the viogpudo adapter; `QueryDisplayConfig` finds its active
//! path (adapter LUID and source id), which gives the desktop size (the source mode), the
//! rotation (the target's) and the GDI name (`\\.\DISPLAYn`) that `ChangeDisplaySettingsExW`
//! takes. The new mode keeps the rotation and position: only width and height are set, and
//! written to the registry so that Windows keeps it.

use windows_sys::Win32::Devices::Display::{
    DisplayConfigGetDeviceInfo, GetDisplayConfigBufferSizes, QueryDisplayConfig,
    DISPLAYCONFIG_DEVICE_INFO_GET_SOURCE_NAME, DISPLAYCONFIG_MODE_INFO,
    DISPLAYCONFIG_MODE_INFO_TYPE_SOURCE, DISPLAYCONFIG_PATH_INFO, DISPLAYCONFIG_ROTATION_ROTATE180,
    DISPLAYCONFIG_ROTATION_ROTATE270, DISPLAYCONFIG_ROTATION_ROTATE90,
    DISPLAYCONFIG_SOURCE_DEVICE_NAME, QDC_ONLY_ACTIVE_PATHS,
};
use windows_sys::Win32::Foundation::{
    ERROR_ACCESS_DENIED, ERROR_INSUFFICIENT_BUFFER, ERROR_SUCCESS, LUID,
};
use windows_sys::Win32::Graphics::Gdi::{
    ChangeDisplaySettingsExW, CDS_UPDATEREGISTRY, DEVMODEW, DISP_CHANGE_BADMODE,
    DISP_CHANGE_SUCCESSFUL, DM_PELSHEIGHT, DM_PELSWIDTH,
};

use crate::error::{Error, Result};
use crate::follow::{CurrentMode, DisplayConfig, Rotation, Size};

/// The displays of one adapter.
pub struct GdiDisplays {
    luid: LUID,
}

/// What the active path of a source says.
struct ActiveSource {
    mode: CurrentMode,
    gdi_name: [u16; 32],
}

fn same_luid(a: LUID, b: LUID) -> bool {
    a.LowPart == b.LowPart && a.HighPart == b.HighPart
}

impl GdiDisplays {
    /// The displays of the adapter `luid`.
    pub fn new(luid: LUID) -> Self {
        Self { luid }
    }

    /// The active paths and modes of the session's desktop.
    fn query() -> Result<(Vec<DISPLAYCONFIG_PATH_INFO>, Vec<DISPLAYCONFIG_MODE_INFO>)> {
        loop {
            let (mut path_count, mut mode_count) = (0u32, 0u32);
            // SAFETY: two writable counts.
            let status = unsafe {
                GetDisplayConfigBufferSizes(QDC_ONLY_ACTIVE_PATHS, &mut path_count, &mut mode_count)
            };
            check(status)?;
            let mut paths = vec![DISPLAYCONFIG_PATH_INFO::default(); path_count as usize];
            let mut modes = vec![DISPLAYCONFIG_MODE_INFO::default(); mode_count as usize];
            // SAFETY: the arrays have the room the counts say; no topology id is asked for
            // (null is allowed without QDC_DATABASE_CURRENT).
            let status = unsafe {
                QueryDisplayConfig(
                    QDC_ONLY_ACTIVE_PATHS,
                    &mut path_count,
                    paths.as_mut_ptr(),
                    &mut mode_count,
                    modes.as_mut_ptr(),
                    core::ptr::null_mut(),
                )
            };
            // The configuration changed between the two calls: ask again.
            if status == ERROR_INSUFFICIENT_BUFFER {
                continue;
            }
            check(status)?;
            paths.truncate(path_count as usize);
            modes.truncate(mode_count as usize);
            return Ok((paths, modes));
        }
    }

    /// The active path of `scanout`, if it is part of the desktop.
    fn source(&self, scanout: u32) -> Result<Option<ActiveSource>> {
        let (paths, modes) = Self::query()?;
        let Some(path) = paths
            .iter()
            .find(|p| same_luid(p.sourceInfo.adapterId, self.luid) && p.sourceInfo.id == scanout)
        else {
            return Ok(None);
        };
        let Some(source_mode) = modes.iter().find(|m| {
            m.infoType == DISPLAYCONFIG_MODE_INFO_TYPE_SOURCE
                && m.id == scanout
                && same_luid(m.adapterId, self.luid)
        }) else {
            return Ok(None);
        };
        // SAFETY: `infoType` is DISPLAYCONFIG_MODE_INFO_TYPE_SOURCE, so the union holds a
        // source mode.
        let source = unsafe { source_mode.Anonymous.sourceMode };
        let rotation = match path.targetInfo.rotation {
            DISPLAYCONFIG_ROTATION_ROTATE90 => Rotation::Rotate90,
            DISPLAYCONFIG_ROTATION_ROTATE180 => Rotation::Rotate180,
            DISPLAYCONFIG_ROTATION_ROTATE270 => Rotation::Rotate270,
            _ => Rotation::Identity,
        };
        let mut name = DISPLAYCONFIG_SOURCE_DEVICE_NAME::default();
        name.header.r#type = DISPLAYCONFIG_DEVICE_INFO_GET_SOURCE_NAME;
        name.header.size = core::mem::size_of::<DISPLAYCONFIG_SOURCE_DEVICE_NAME>() as u32;
        name.header.adapterId = self.luid;
        name.header.id = scanout;
        // SAFETY: the header heads a DISPLAYCONFIG_SOURCE_DEVICE_NAME of the size it states.
        let status = unsafe { DisplayConfigGetDeviceInfo(&mut name.header) };
        check(status as u32)?;
        Ok(Some(ActiveSource {
            mode: CurrentMode {
                desktop: Size::new(source.width, source.height),
                rotation,
            },
            gdi_name: name.viewGdiDeviceName,
        }))
    }
}

/// A Win32 error code as the agent's error: access denied means the process is not on the
/// interactive desktop (no user, or a secure desktop is up).
fn check(status: u32) -> Result<()> {
    match status {
        ERROR_SUCCESS => Ok(()),
        ERROR_ACCESS_DENIED => Err(Error::NoSession),
        other => Err(Error::Os(other)),
    }
}

impl DisplayConfig for GdiDisplays {
    fn current_mode(&mut self, scanout: u32) -> Result<Option<CurrentMode>> {
        Ok(self.source(scanout)?.map(|s| s.mode))
    }

    fn set_mode(&mut self, scanout: u32, desktop: Size, _rotation: Rotation) -> Result<()> {
        // Rotation and position are left as they are: only the fields named change.
        let Some(source) = self.source(scanout)? else {
            return Err(Error::ModeNotListed);
        };
        let mode = DEVMODEW {
            dmSize: core::mem::size_of::<DEVMODEW>() as u16,
            dmFields: DM_PELSWIDTH | DM_PELSHEIGHT,
            dmPelsWidth: desktop.width,
            dmPelsHeight: desktop.height,
            ..DEVMODEW::default()
        };
        // SAFETY: the device name is the NUL-terminated GDI name of the source; `mode` is a
        // DEVMODEW whose dmSize says so; no window, no video parameters.
        let result = unsafe {
            ChangeDisplaySettingsExW(
                source.gdi_name.as_ptr(),
                &mode,
                core::ptr::null_mut(),
                CDS_UPDATEREGISTRY,
                core::ptr::null(),
            )
        };
        match result {
            DISP_CHANGE_SUCCESSFUL => Ok(()),
            DISP_CHANGE_BADMODE => Err(Error::ModeNotListed),
            other => Err(Error::ModeRefused(other)),
        }
    }
}

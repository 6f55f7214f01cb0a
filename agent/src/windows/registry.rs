//! The settings, read from `HKLM\SYSTEM\CurrentControlSet\Services\VioGpuAgent\Parameters`
//! (the INF writes the defaults there).

use windows_sys::Win32::Foundation::ERROR_SUCCESS;
use windows_sys::Win32::System::Registry::{RegGetValueW, HKEY_LOCAL_MACHINE, RRF_RT_REG_DWORD};

use super::{wide, SERVICE_NAME};
use crate::settings::Settings;

/// One DWORD of the `Parameters` key, `None` when it is not set (or not a DWORD).
fn dword(name: &str) -> Option<u32> {
    let key = wide(&format!(
        "SYSTEM\\CurrentControlSet\\Services\\{SERVICE_NAME}\\Parameters"
    ));
    let value = wide(name);
    let mut data = 0u32;
    let mut size = core::mem::size_of::<u32>() as u32;
    // SAFETY: key and value names are NUL-terminated; `data` has room for the `size` bytes
    // a REG_DWORD (the only type RRF_RT_REG_DWORD lets through) needs.
    let status = unsafe {
        RegGetValueW(
            HKEY_LOCAL_MACHINE,
            key.as_ptr(),
            value.as_ptr(),
            RRF_RT_REG_DWORD,
            core::ptr::null_mut(),
            (&raw mut data).cast(),
            &mut size,
        )
    };
    (status == ERROR_SUCCESS).then_some(data)
}

/// The settings as the registry has them now.
pub fn settings() -> Settings {
    Settings::from_values(dword)
}

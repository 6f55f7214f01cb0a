//! The dxgkrnl callbacks the adapter uses, each wrapped in one small function.
//!
//! The `DXGKRNL_INTERFACE` is copied from `DxgkDdiStartDevice`; dxgkrnl keeps its callbacks
//! valid until the adapter is removed, so calling through the copy is sound for the adapter's
//! lifetime. A missing (`None`) callback is treated as a failed call, never a crash.

use core::ffi::c_void;

use crate::ddi::*;

/// `PCI_WHICHSPACE_CONFIG` (= `DXGK_WHICHSPACE_CONFIG`): PCI configuration space.
pub const DXGK_WHICHSPACE_CONFIG: u32 = 0;
/// `MmNonCached`, the caching type for register BARs.
pub const MM_NON_CACHED: MEMORY_CACHING_TYPE = MEMORY_CACHING_TYPE(0);

/// `DxgkCbGetDeviceInformation`.
pub fn device_information(dxgk: &DXGKRNL_INTERFACE) -> Result<DXGK_DEVICE_INFO, NTSTATUS> {
    let f = dxgk.DxgkCbGetDeviceInformation.ok_or(STATUS_UNSUCCESSFUL)?;
    let mut info = DXGK_DEVICE_INFO::default();
    // SAFETY: dxgkrnl callback valid for the adapter's lifetime (module docs); `info` is a
    // writable DXGK_DEVICE_INFO of the WIN8 size the interface version promises.
    let status = unsafe { f(dxgk.DeviceHandle, &mut info) };
    if nt_success(status) {
        Ok(info)
    } else {
        Err(status)
    }
}

/// `DxgkCbAcquirePostDisplayOwnership` (PASSIVE_LEVEL): what the firmware (or the previous
/// driver) left on screen, when it left anything (`Width` 0 means nothing).
pub fn acquire_post_display(dxgk: &DXGKRNL_INTERFACE) -> Option<DXGK_DISPLAY_INFORMATION> {
    let f = dxgk.DxgkCbAcquirePostDisplayOwnership?;
    let mut info = DXGK_DISPLAY_INFORMATION::default();
    // SAFETY: dxgkrnl callback valid for the adapter's lifetime (module docs); `info` is a
    // writable DXGK_DISPLAY_INFORMATION.
    let status = unsafe { f(dxgk.DeviceHandle, &mut info) };
    nt_success(status).then_some(info)
}

/// `DxgkCbReadDeviceSpace` of config space into `buf`; true when every byte was read.
pub fn read_config(dxgk: &DXGKRNL_INTERFACE, offset: u32, buf: &mut [u8]) -> bool {
    let Some(f) = dxgk.DxgkCbReadDeviceSpace else {
        return false;
    };
    let Ok(len) = u32::try_from(buf.len()) else {
        return false;
    };
    let mut read = 0u32;
    // SAFETY: callback valid (module docs); `buf` is writable for `len` bytes and `read` is a
    // writable ULONG.
    let status = unsafe {
        f(
            dxgk.DeviceHandle,
            DXGK_WHICHSPACE_CONFIG,
            buf.as_mut_ptr().cast::<c_void>(),
            offset,
            len,
            &mut read,
        )
    };
    nt_success(status) && read == len
}

/// `DxgkCbMapMemory` of a register range into kernel space, uncached.
pub fn map_memory(dxgk: &DXGKRNL_INTERFACE, start: u64, length: u32) -> Result<usize, NTSTATUS> {
    let f = dxgk.DxgkCbMapMemory.ok_or(STATUS_UNSUCCESSFUL)?;
    let mut virt: *mut c_void = core::ptr::null_mut();
    let address =
        PHYSICAL_ADDRESS::new(i64::try_from(start).map_err(|_| STATUS_INVALID_PARAMETER)?);
    // SAFETY: callback valid (module docs); `virt` is a writable pointer slot.
    let status = unsafe {
        f(
            dxgk.DeviceHandle,
            address,
            length,
            0,
            0,
            MM_NON_CACHED,
            &mut virt,
        )
    };
    if !nt_success(status) {
        return Err(status);
    }
    if virt.is_null() {
        return Err(STATUS_UNSUCCESSFUL);
    }
    Ok(virt as usize)
}

/// `DxgkCbUnmapMemory` of a mapping made by [`map_memory`].
pub fn unmap_memory(dxgk: &DXGKRNL_INTERFACE, virt: usize) {
    if let Some(f) = dxgk.DxgkCbUnmapMemory {
        // SAFETY: callback valid (module docs); `virt` came from DxgkCbMapMemory and the caller
        // dropped every register window over it.
        let _ = unsafe { f(dxgk.DeviceHandle, virt as *mut c_void) };
    }
}

/// `DxgkCbQueueDpc`; true when the DPC was queued (or already was).
pub fn queue_dpc(dxgk: &DXGKRNL_INTERFACE) -> bool {
    match dxgk.DxgkCbQueueDpc {
        // SAFETY: callback valid (module docs); callable at device IRQL by contract.
        Some(f) => unsafe { f(dxgk.DeviceHandle) != 0 },
        None => false,
    }
}

/// `DxgkCbNotifyDpc`, from the DPC (both samples call it on every DPC).
pub fn notify_dpc(dxgk: &DXGKRNL_INTERFACE) {
    if let Some(f) = dxgk.DxgkCbNotifyDpc {
        // SAFETY: callback valid (module docs); callable at DISPATCH_LEVEL by contract.
        unsafe { f(dxgk.DeviceHandle) };
    }
}

/// `DxgkCbIndicateChildStatus` with a connection status for `child`.
pub fn indicate_connection(dxgk: &DXGKRNL_INTERFACE, child: u32, connected: bool) {
    let Some(f) = dxgk.DxgkCbIndicateChildStatus else {
        return;
    };
    let mut status = DXGK_CHILD_STATUS {
        Type: StatusConnection,
        ChildUid: child,
        Status: 0,
    };
    status.set_hot_plug_connected(connected);
    // SAFETY: callback valid (module docs); `status` is a valid DXGK_CHILD_STATUS that lives
    // across the call.
    let _ = unsafe { f(dxgk.DeviceHandle, &mut status) };
}

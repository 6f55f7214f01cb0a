//! The `DXGKRNL_INTERFACE` callbacks, called as a driver would: device information and the
//! resource list, config space, mappings, the hosted environment's DMA and MMIO routing, and
//! how misuse is answered and recorded.

use std::ffi::c_void;
use std::ptr;

use viogpu_common::hal::{Hal, RegisterAccess};
use viogpudo::ddi::*;

use super::*;
use crate::resources::{self, Resource};
use crate::{Event, Machine, PostDisplay, DXGK_WHICHSPACE_CONFIG, DXGK_WHICHSPACE_ROM};

fn read_config(i: &DXGKRNL_INTERFACE, offset: u32, len: u32) -> (NTSTATUS, u32, Vec<u8>) {
    let mut buf = vec![0xEEu8; len as usize];
    let mut read = 0xFFFF_FFFF;
    // SAFETY: the simulator's callback with a buffer of `len` bytes.
    let status = unsafe {
        i.DxgkCbReadDeviceSpace.unwrap()(
            i.DeviceHandle,
            DXGK_WHICHSPACE_CONFIG,
            buf.as_mut_ptr().cast(),
            offset,
            len,
            &mut read,
        )
    };
    (status, read, buf)
}

fn map(i: &DXGKRNL_INTERFACE, phys: u64, len: u32, io: u8) -> (NTSTATUS, usize) {
    let mut va: *mut c_void = ptr::null_mut();
    // SAFETY: the simulator's callback with a valid out pointer.
    let status = unsafe {
        i.DxgkCbMapMemory.unwrap()(
            i.DeviceHandle,
            LARGE_INTEGER::new(phys as i64),
            len,
            io,
            0,
            MEMORY_CACHING_TYPE(0),
            &mut va,
        )
    };
    (status, va as usize)
}

fn unmap(i: &DXGKRNL_INTERFACE, address: usize) -> NTSTATUS {
    // SAFETY: the simulator's callback; any address is allowed (it is only looked up).
    unsafe { i.DxgkCbUnmapMemory.unwrap()(i.DeviceHandle, address as *mut c_void) }
}

#[test]
fn device_information_lists_the_bars_and_the_granted_interrupts() {
    let sim = started();
    let i = fake_interface();
    let mut info = DXGK_DEVICE_INFO::default();
    // SAFETY: the simulator's callback with a valid out structure.
    let status = unsafe { i.DxgkCbGetDeviceInformation.unwrap()(i.DeviceHandle, &mut info) };
    assert_eq!(status, STATUS_SUCCESS);
    assert_eq!(info.MiniportDeviceContext as usize, CONTEXT);
    assert!(!info.PhysicalDeviceObject.is_null());
    // SAFETY: the simulator's registry path buffer of Length bytes.
    let path = unsafe {
        std::slice::from_raw_parts(
            info.DeviceRegistryPath.Buffer,
            usize::from(info.DeviceRegistryPath.Length) / 2,
        )
    };
    assert!(String::from_utf16(path)
        .unwrap()
        .ends_with("\\Services\\viogpudo"));

    // Read the list through the pointer the driver gets: header first, then the counted rest.
    let list: *const u8 = info.TranslatedResourceList.cast();
    // SAFETY: the list is at least its 20-byte header long.
    let header = unsafe { std::slice::from_raw_parts(list, 20) };
    let count = u32::from_le_bytes(header[16..20].try_into().unwrap()) as usize;
    // SAFETY: the header says how many 20-byte descriptors follow.
    let bytes = unsafe { std::slice::from_raw_parts(list, 20 + count * 20) };
    assert_eq!(bytes, &sim.resource_list()[..]);
    assert_eq!(
        resources::parse(bytes).unwrap(),
        [
            Resource::Memory {
                start: 0xFEA0_0000,
                len: 0x1000,
                flags: 0
            },
            Resource::Memory {
                start: 0xFE80_0000,
                len: 0x4000,
                flags: resources::CM_RESOURCE_MEMORY_PREFETCHABLE
            },
            msg(0),
            msg(1),
            msg(2),
        ]
    );
    let bars = sim.machine().bars();
    assert_eq!(bars.len(), 2);
    assert_eq!((bars[1].index, bars[1].is_64bit), (4, true));
}

fn msg(n: u32) -> Resource {
    Resource::Interrupt {
        flags: resources::CM_RESOURCE_INTERRUPT_LATCHED | resources::CM_RESOURCE_INTERRUPT_MESSAGE,
        level: 0x60 + n as u16,
        vector: 0x60 + n,
        affinity: 1,
    }
}

#[test]
fn config_space_reads_are_bounded_and_report_bytes_read() {
    let sim = started();
    let i = fake_interface();
    let (status, read, ids) = read_config(&i, 0, 4);
    assert_eq!((status, read), (STATUS_SUCCESS, 4));
    assert_eq!(
        ids,
        [0xF4, 0x1A, 0x50, 0x10],
        "virtio vendor, virtio-gpu device"
    );

    // A read running past the end stops at byte 255.
    let (status, read, tail) = read_config(&i, 250, 16);
    assert_eq!((status, read), (STATUS_SUCCESS, 6));
    let mut expected = [0u8; 6];
    assert_eq!(sim.machine().config_read(250, &mut expected), 6);
    assert_eq!(&tail[..6], &expected);
    assert_eq!(&tail[6..], &[0xEE; 10], "bytes past BytesRead untouched");

    assert!(sim.errors().is_empty());
    let (status, read, _) = read_config(&i, 256, 4);
    assert_eq!((status, read), (STATUS_INVALID_PARAMETER, 0));
    assert_eq!(sim.errors().len(), 1);

    let mut buf = [0u8; 4];
    let mut read = 0;
    // SAFETY: valid buffer; the ROM space is refused before it is touched.
    let status = unsafe {
        i.DxgkCbReadDeviceSpace.unwrap()(
            i.DeviceHandle,
            DXGK_WHICHSPACE_ROM,
            buf.as_mut_ptr().cast(),
            0,
            4,
            &mut read,
        )
    };
    assert_eq!(status, STATUS_NOT_SUPPORTED);
    // SAFETY: a null BytesRead is refused before anything is written.
    let status = unsafe {
        i.DxgkCbReadDeviceSpace.unwrap()(
            i.DeviceHandle,
            DXGK_WHICHSPACE_CONFIG,
            buf.as_mut_ptr().cast(),
            0,
            4,
            ptr::null_mut(),
        )
    };
    assert_eq!(status, STATUS_INVALID_PARAMETER);
    assert_eq!(sim.errors().len(), 3);
}

#[test]
fn config_space_writes_reach_the_device() {
    let sim = started();
    let i = fake_interface();
    let mut command = 0x0406u16.to_le_bytes();
    let mut line = [0x0Bu8];
    let mut written = 0;
    // SAFETY: the simulator's callback with valid buffers.
    unsafe {
        let write = i.DxgkCbWriteDeviceSpace.unwrap();
        assert_eq!(
            write(
                i.DeviceHandle,
                0,
                command.as_mut_ptr().cast(),
                4,
                2,
                &mut written
            ),
            STATUS_SUCCESS
        );
        assert_eq!(written, 2);
        assert_eq!(
            write(
                i.DeviceHandle,
                0,
                line.as_mut_ptr().cast(),
                0x3C,
                1,
                &mut written
            ),
            STATUS_SUCCESS
        );
        assert_eq!(written, 1);
    }
    let (_, _, back) = read_config(&i, 4, 2);
    assert_eq!(back, 0x0406u16.to_le_bytes());
    let (_, _, back) = read_config(&i, 0x3C, 2);
    assert_eq!(back, [0x0B, 1], "interrupt line written, pin kept");
    drop(sim);
}

#[test]
fn mappings_are_tracked_and_route_register_access_to_the_bar() {
    let sim = started();
    let i = fake_interface();
    let (status, bar4) = map(&i, 0xFE80_0000, 0x4000, 0);
    assert_eq!(status, STATUS_SUCCESS);
    let (status, isr) = map(&i, 0xFE80_1000, 0x1000, 0);
    assert_eq!(status, STATUS_SUCCESS);
    assert_ne!(bar4, isr, "every mapping gets its own address");
    assert_eq!(sim.live_mappings().len(), 2);
    assert_eq!(sim.machine().live_mappings(), 2);

    // The driver's hosted Mmio over the mapping reaches the device's common configuration.
    // SAFETY: the range was returned by DxgkCbMapMemory and stays mapped below.
    let mmio = unsafe { viogpudo::os::Mmio::new(bar4, 0x4000) }.unwrap();
    mmio.write_u32(0x00, 1); // device_feature_select = 1
    assert_eq!(mmio.read_u32(0x04) & 1, 1, "VIRTIO_F_VERSION_1 (bit 32)");
    assert_eq!(mmio.read_u16(0x12), 2, "num_queues");
    assert_eq!(sim.machine().stray_accesses(), 0);

    // Misuse: outside any BAR, I/O space, unknown or repeated unmaps.
    assert_eq!(map(&i, 0xFE80_3000, 0x2000, 0).0, STATUS_INVALID_PARAMETER);
    assert_eq!(map(&i, 0xFE80_0000, 0x1000, 1).0, STATUS_INVALID_PARAMETER);
    assert_eq!(unmap(&i, 0xDEAD_0000), STATUS_INVALID_PARAMETER);
    assert_eq!(sim.errors().len(), 3);
    assert_eq!(unmap(&i, isr), STATUS_SUCCESS);
    assert_eq!(unmap(&i, isr), STATUS_INVALID_PARAMETER, "double unmap");
    assert_eq!(sim.errors().len(), 4);
    assert!(sim.errors()[3].contains("not returned by DxgkCbMapMemory"));
    assert_eq!(unmap(&i, bar4), STATUS_SUCCESS);
    assert!(sim.live_mappings().is_empty());
    assert_eq!(sim.machine().live_mappings(), 0);

    // An access after the unmap is a stray access, not a device access.
    assert_eq!(mmio.read_u32(0x04), u32::MAX);
    assert_eq!(sim.machine().stray_accesses(), 1);
    let maps: Vec<_> = sim
        .events()
        .into_iter()
        .filter(|e| matches!(e, Event::Map { .. } | Event::Unmap { .. }))
        .collect();
    assert_eq!(
        maps,
        [
            Event::Map {
                address: bar4,
                phys: 0xFE80_0000,
                len: 0x4000
            },
            Event::Map {
                address: isr,
                phys: 0xFE80_1000,
                len: 0x1000
            },
            Event::Unmap { address: isr },
            Event::Unmap { address: bar4 },
        ]
    );
}

#[test]
fn hosted_dma_comes_from_the_machine() {
    let sim = started();
    let dma = viogpudo::os::Dma::current().unwrap();
    let region = dma.dma_alloc(5000).unwrap();
    assert_eq!(region.len, 8192);
    assert_eq!(sim.machine().dma_allocated_bytes(), 8192);
    let mut check = [1u8; 16];
    assert!(sim.machine().read_phys(region.phys, &mut check));
    assert_eq!(check, [0; 16], "zeroed guest RAM at the bus address");
    // SAFETY: allocated above, freed once, never shown to a device.
    unsafe { dma.dma_free(region) };
    assert_eq!(sim.machine().dma_allocated_bytes(), 0);
}

#[test]
fn unexpected_callbacks_and_bad_handles_are_recorded() {
    let sim = started();
    let i = fake_interface();
    // SAFETY: the simulator's callbacks; the stubs touch none of their pointer arguments.
    unsafe {
        let acpi = i.DxgkCbEvalAcpiMethod.unwrap()(
            i.DeviceHandle,
            0,
            ptr::null_mut(),
            0,
            ptr::null_mut(),
            0,
        );
        assert_eq!(acpi, STATUS_NOT_IMPLEMENTED);
        assert!(i.DxgkCbGetHandleData.unwrap()(ptr::null()).is_null());
        let mut info = DXGK_DEVICE_INFO::default();
        let garbage = 0x1234usize as HANDLE;
        assert_eq!(
            i.DxgkCbGetDeviceInformation.unwrap()(garbage, &mut info),
            STATUS_INVALID_PARAMETER
        );
    }
    assert_eq!(
        sim.unexpected_calls(),
        ["DxgkCbEvalAcpiMethod", "DxgkCbGetHandleData"]
    );
    assert_eq!(sim.errors().len(), 1);
    assert!(sim.errors()[0].contains("not a live adapter"));
}

#[test]
fn post_display_ownership_follows_the_option() {
    let mut fb = DXGK_DISPLAY_INFORMATION {
        Width: 800,
        Height: 600,
        Pitch: 3200,
        ColorFormat: D3DDDIFMT_X8R8G8B8,
        ..Default::default()
    };
    fb.PhysicAddress = LARGE_INTEGER::new(0x8000_0000);
    for (option, status, width) in [
        (PostDisplay::Zeroed, STATUS_SUCCESS, 0),
        (PostDisplay::Fail, STATUS_UNSUCCESSFUL, 0x5A5A),
        (PostDisplay::Framebuffer(fb), STATUS_SUCCESS, 800),
    ] {
        let options = SimOptions {
            post_display: option,
            ..SimOptions::default()
        };
        let sim = started_with(InterruptMode::Line, options);
        let i = fake_interface();
        let mut info = DXGK_DISPLAY_INFORMATION {
            Width: 0x5A5A,
            ..Default::default()
        };
        // SAFETY: the simulator's callback with a valid out structure.
        let s = unsafe { i.DxgkCbAcquirePostDisplayOwnership.unwrap()(i.DeviceHandle, &mut info) };
        assert_eq!((s, info.Width), (status, width));
        assert!(sim.events().contains(&Event::AcquirePostDisplay));
    }
}

#[test]
fn indicated_child_status_is_recorded() {
    let sim = started();
    let i = fake_interface();
    let mut status = DXGK_CHILD_STATUS {
        Type: StatusConnection,
        ChildUid: 0,
        Status: 0,
    };
    status.set_hot_plug_connected(true);
    // SAFETY: the simulator's callback with a valid status, then a null one.
    unsafe {
        assert_eq!(
            i.DxgkCbIndicateChildStatus.unwrap()(i.DeviceHandle, &mut status),
            STATUS_SUCCESS
        );
        assert_eq!(
            i.DxgkCbIndicateChildStatus.unwrap()(i.DeviceHandle, ptr::null_mut()),
            STATUS_INVALID_PARAMETER
        );
    }
    assert_eq!(
        sim.indicated_child_status(),
        [crate::ChildStatus {
            kind: StatusConnection.0,
            child_uid: 0,
            status: 1
        }]
    );
}

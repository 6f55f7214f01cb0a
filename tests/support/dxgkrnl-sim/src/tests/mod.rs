//! Unit tests of the simulator against a fake driver: a handful of `extern "system"` thunks
//! that log what dxgkrnl asked of them (per thread, so tests run in parallel), plus the test
//! itself calling the `DXGKRNL_INTERFACE` callbacks as a driver would.
#![allow(clippy::unwrap_used)]

mod callbacks;
mod interrupts;

use std::cell::RefCell;
use std::ffi::c_void;

use viogpudo::ddi::*;
use virtio_gpu_model::pci::QueueHandler;
use virtio_queue::Queue;
use vm_memory::GuestMemoryMmap;

use crate::{InterruptMode, ModelMachine, ModelMachineConfig, Sim, SimOptions};

/// A device whose queues nobody serves (the tests here only need PCI and interrupts).
struct NoGpu;

impl QueueHandler for NoGpu {
    fn queue_notify(&mut self, _: u16, _: &mut Queue, _: &GuestMemoryMmap) {}
}

/// What the fake driver does and saw, per test thread.
#[derive(Default)]
struct Fake {
    log: Vec<String>,
    interface: Option<DXGKRNL_INTERFACE>,
    /// The ISR queues a DPC.
    isr_queues_dpc: bool,
    /// Run inside DxgkDdiQueryAdapterInfo (a DDI in progress).
    hook: Option<Box<dyn FnMut()>>,
    edid: Vec<u8>,
}

std::thread_local! {
    static FAKE: RefCell<Fake> = RefCell::new(Fake {
        isr_queues_dpc: true,
        edid: viogpu_common::edid::build(1280, 800).unwrap(),
        ..Fake::default()
    });
}

fn log(line: impl Into<String>) {
    FAKE.with(|f| f.borrow_mut().log.push(line.into()));
}

fn fake_log() -> Vec<String> {
    FAKE.with(|f| f.borrow().log.clone())
}

fn set_hook(hook: impl FnMut() + 'static) {
    FAKE.with(|f| f.borrow_mut().hook = Some(Box::new(hook)));
}

fn fake_interface() -> DXGKRNL_INTERFACE {
    FAKE.with(|f| f.borrow().interface).unwrap()
}

/// The fake adapter context.
const CONTEXT: usize = 0xC0_4E7E;

unsafe extern "system" fn add_device(
    _pdo: *mut DEVICE_OBJECT,
    context: *mut *mut c_void,
) -> NTSTATUS {
    log("AddDevice");
    // SAFETY: the simulator passes a valid out pointer.
    unsafe { context.write(CONTEXT as *mut c_void) };
    STATUS_SUCCESS
}

unsafe extern "system" fn start_device(
    context: *mut c_void,
    _info: *mut DXGK_START_INFO,
    interface: *mut DXGKRNL_INTERFACE,
    sources: *mut u32,
    children: *mut u32,
) -> NTSTATUS {
    assert_eq!(context as usize, CONTEXT);
    log("StartDevice");
    // SAFETY: the simulator passes valid pointers.
    unsafe {
        let interface = interface.read();
        FAKE.with(|f| f.borrow_mut().interface = Some(interface));
        sources.write(1);
        children.write(1);
    }
    STATUS_SUCCESS
}

unsafe extern "system" fn stop_device(_: *mut c_void) -> NTSTATUS {
    log("StopDevice");
    STATUS_SUCCESS
}

unsafe extern "system" fn remove_device(_: *mut c_void) -> NTSTATUS {
    log("RemoveDevice");
    STATUS_SUCCESS
}

unsafe extern "system" fn interrupt_routine(context: *mut c_void, message: u32) -> BOOLEAN {
    assert_eq!(context as usize, CONTEXT);
    log(format!("ISR {message}"));
    if FAKE.with(|f| f.borrow().isr_queues_dpc) {
        let i = fake_interface();
        // SAFETY: the simulator's callback with its own handle.
        unsafe { i.DxgkCbQueueDpc.unwrap()(i.DeviceHandle) };
    }
    1
}

unsafe extern "system" fn dpc_routine(context: *mut c_void) {
    assert_eq!(context as usize, CONTEXT);
    log("DPC");
}

unsafe extern "system" fn unload() {
    log("Unload");
}

unsafe extern "system" fn query_child_relations(
    _: *mut c_void,
    relations: *mut DXGK_CHILD_DESCRIPTOR,
    size: u32,
) -> NTSTATUS {
    log("QueryChildRelations");
    assert_eq!(
        size as usize,
        2 * core::mem::size_of::<DXGK_CHILD_DESCRIPTOR>()
    );
    let mut child = DXGK_CHILD_DESCRIPTOR {
        ChildDeviceType: TypeVideoOutput,
        ChildUid: 0,
        ..Default::default()
    };
    child.ChildCapabilities.HpdAwareness = HpdAwarenessInterruptible;
    // SAFETY: the array holds two descriptors; we fill the first.
    unsafe { relations.write(child) };
    STATUS_SUCCESS
}

unsafe extern "system" fn query_child_status(
    _: *mut c_void,
    status: *mut DXGK_CHILD_STATUS,
    _: BOOLEAN,
) -> NTSTATUS {
    log("QueryChildStatus");
    // SAFETY: the simulator passes a valid status.
    unsafe { (*status).set_hot_plug_connected(true) };
    STATUS_SUCCESS
}

unsafe extern "system" fn query_device_descriptor(
    _: *mut c_void,
    _uid: u32,
    descriptor: *mut DXGK_DEVICE_DESCRIPTOR,
) -> NTSTATUS {
    // SAFETY: the simulator passes a valid descriptor naming a buffer of its length.
    let d = unsafe { descriptor.read() };
    log(format!("QueryDeviceDescriptor {}", d.DescriptorOffset));
    let edid = FAKE.with(|f| f.borrow().edid.clone());
    let start = d.DescriptorOffset as usize;
    let Some(bytes) = edid.get(start..start + d.DescriptorLength as usize) else {
        return STATUS_MONITOR_NO_MORE_DESCRIPTOR_DATA;
    };
    // SAFETY: DescriptorBuffer holds DescriptorLength bytes.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), d.DescriptorBuffer.cast(), bytes.len())
    };
    STATUS_SUCCESS
}

unsafe extern "system" fn query_adapter_info(
    _: HANDLE,
    args: *const DXGKARG_QUERYADAPTERINFO,
) -> NTSTATUS {
    log("QueryAdapterInfo begin");
    let hook = FAKE.with(|f| f.borrow_mut().hook.take());
    if let Some(mut hook) = hook {
        hook();
        FAKE.with(|f| f.borrow_mut().hook = Some(hook));
    }
    // SAFETY: the simulator passes a valid argument naming a DXGK_DRIVERCAPS.
    unsafe {
        let args = args.read();
        let caps = args.pOutputData.cast::<DXGK_DRIVERCAPS>();
        (*caps).MaxPointerWidth = 64;
        (*caps).SupportNonVGA = 1;
    }
    log("QueryAdapterInfo end");
    STATUS_SUCCESS
}

unsafe extern "system" fn set_power_state(
    _: *mut c_void,
    uid: u32,
    state: DEVICE_POWER_STATE,
    _: POWER_ACTION,
) -> NTSTATUS {
    log(format!("SetPowerState {uid:#x} D{}", state.0 - 1));
    STATUS_SUCCESS
}

/// The fake driver's DDI table.
fn fake_init() -> KMDDOD_INITIALIZATION_DATA {
    KMDDOD_INITIALIZATION_DATA {
        Version: DXGKDDI_INTERFACE_VERSION_WIN8,
        DxgkDdiAddDevice: Some(add_device),
        DxgkDdiStartDevice: Some(start_device),
        DxgkDdiStopDevice: Some(stop_device),
        DxgkDdiRemoveDevice: Some(remove_device),
        DxgkDdiInterruptRoutine: Some(interrupt_routine),
        DxgkDdiDpcRoutine: Some(dpc_routine),
        DxgkDdiUnload: Some(unload),
        DxgkDdiQueryChildRelations: Some(query_child_relations),
        DxgkDdiQueryChildStatus: Some(query_child_status),
        DxgkDdiQueryDeviceDescriptor: Some(query_device_descriptor),
        DxgkDdiQueryAdapterInfo: Some(query_adapter_info),
        DxgkDdiSetPowerState: Some(set_power_state),
        ..Default::default()
    }
}

fn machine(interrupts: InterruptMode) -> ModelMachine {
    let config = ModelMachineConfig {
        ram_size: 16 << 20,
        interrupts,
        ..ModelMachineConfig::default()
    };
    ModelMachine::new(config, Box::new(NoGpu)).unwrap()
}

/// A simulator with the fake driver loaded, added and started, MSI-X granted.
fn started() -> Sim<ModelMachine> {
    started_with(InterruptMode::Msix { messages: 3 }, SimOptions::default())
}

fn started_with(interrupts: InterruptMode, options: SimOptions) -> Sim<ModelMachine> {
    let mut sim = Sim::load_with(fake_init(), machine(interrupts), options).unwrap();
    sim.add_device().unwrap();
    sim.start_device().unwrap();
    sim
}

#[test]
fn boot_device_calls_the_ddis_in_dxgkrnl_order() {
    let mut sim = Sim::load(fake_init(), machine(InterruptMode::Line)).unwrap();
    let boot = sim.boot_device().unwrap();
    assert_eq!(
        sim.ddi_calls(),
        [
            "DxgkDdiAddDevice",
            "DxgkDdiStartDevice",
            "DxgkDdiQueryChildRelations",
            "DxgkDdiQueryChildStatus",
            "DxgkDdiQueryDeviceDescriptor",
            "DxgkDdiQueryAdapterInfo",
        ]
    );
    assert_eq!(boot.sources, 1);
    assert_eq!(boot.children.len(), 1);
    let child = &boot.children[0];
    assert!(child.connected);
    assert_eq!(child.device_type, TypeVideoOutput.0);
    assert_eq!(child.hpd_awareness, HpdAwarenessInterruptible.0);
    let expected = viogpu_common::edid::build(1280, 800).unwrap();
    assert_eq!(child.edid.as_deref(), Some(&expected[..]));
    assert_eq!(
        crate::preferred_mode(child.edid.as_deref()),
        (1280, 800),
        "the EDID's preferred mode"
    );
    assert!(sim.unexpected_calls().is_empty());
    assert!(sim.errors().is_empty());
}

#[test]
fn edid_extension_blocks_are_read_block_by_block() {
    FAKE.with(|f| {
        let mut f = f.borrow_mut();
        // Two blocks: the base announcing one extension, and an extension.
        f.edid[126] = 1;
        let sum = f.edid[..127].iter().fold(0u8, |a, &b| a.wrapping_add(b));
        f.edid[127] = 0u8.wrapping_sub(sum);
        f.edid.extend_from_slice(&[0x70; 128]);
    });
    let mut sim = started();
    let edid = sim.query_edid(0).unwrap().unwrap();
    assert_eq!(edid.len(), 256);
    assert_eq!(&edid[128..], &[0x70; 128]);
    assert!(fake_log().contains(&"QueryDeviceDescriptor 128".to_string()));
}

#[test]
fn power_transitions_order_children_and_adapter() {
    let mut sim = started();
    sim.set_power(PowerDeviceD3).unwrap();
    sim.set_power(PowerDeviceD0).unwrap();
    let power: Vec<String> = fake_log()
        .into_iter()
        .filter(|l| l.starts_with("SetPowerState"))
        .collect();
    assert_eq!(
        power,
        [
            "SetPowerState 0x0 D3",
            "SetPowerState 0xffffffff D3",
            "SetPowerState 0xffffffff D0",
            "SetPowerState 0x0 D0",
        ]
    );
}

#[test]
fn lifecycle_is_enforced_and_ends_in_unload() {
    let mut sim = started();
    assert_eq!(
        sim.remove(),
        Err(crate::SimError::Phase {
            step: "RemoveDevice",
            phase: crate::Phase::Started
        })
    );
    sim.stop().unwrap();
    sim.remove().unwrap();
    assert!(sim.context().is_null());
    sim.unload().unwrap();
    assert_eq!(
        fake_log(),
        [
            "AddDevice",
            "StartDevice",
            "StopDevice",
            "RemoveDevice",
            "Unload"
        ]
    );
}

#[test]
fn load_refuses_tables_dxgkrnl_would_refuse() {
    let old = KMDDOD_INITIALIZATION_DATA {
        Version: DXGKDDI_INTERFACE_VERSION_WIN7,
        ..fake_init()
    };
    assert_eq!(
        Sim::load(old, machine(InterruptMode::Line)).unwrap_err(),
        crate::SimError::BadVersion(DXGKDDI_INTERFACE_VERSION_WIN7)
    );
    let no_isr = KMDDOD_INITIALIZATION_DATA {
        DxgkDdiInterruptRoutine: None,
        ..fake_init()
    };
    assert_eq!(
        Sim::load(no_isr, machine(InterruptMode::Line)).unwrap_err(),
        crate::SimError::MissingDdi("DxgkDdiInterruptRoutine")
    );
}

//! The Windows kernel backend of [`crate::os`]: contiguous DMA memory, register access, the
//! queue spin lock, the completion event, the PASSIVE_LEVEL state lock ([`PassiveMutex`], a
//! KMUTEX), time, debug print and the driver's registry settings.
//!
//! This is the only code the Linux machines cannot build, so it is kept thin: every kernel
//! routine is called from exactly one small function below, whose `// SAFETY:` comment cites
//! the routine's documented contract (mostly its IRQL rule). The rest of the file is plain
//! bookkeeping that mirrors the hosted backend (`hosted.rs`) name for name.
//!
//! # Driver-wide state
//!
//! The hosted backend hands every object a handle to the same machine; here the machine is the
//! kernel, and the few kernel objects the driver shares live in one static, [`KernelState`]:
//! the queue spin locks behind [`OsPlatform::raise`] (one per virtqueue), the completion event behind
//! [`OsPlatform::wait_for_completion`], and the path of the service's `Parameters` key read by
//! [`registry_dword`]. DriverEntry calls [`init`] once (PASSIVE_LEVEL, before any adapter
//! exists); until then [`OsPlatform::current`] returns `None` and [`registry_dword`] finds
//! nothing. The static sits in the driver image's data section, which is nonpaged, as KEVENT
//! and KSPIN_LOCK require.
//!
//! With two virtio-gpu adapters both share the queue locks and the event. That stays correct:
//! a lock only serializes more than it must, and a wake-up meant for one adapter makes the other
//! adapter's waiter re-check its queue early, which [`viogpu_common::gpu::Platform`] allows
//! ("may return early"); a waiter whose wake-up was taken sleeps at most its time slice.
//!
//! # Registry settings
//!
//! [`registry_dword`] reads REG_DWORD values from
//! `HKLM\SYSTEM\CurrentControlSet\Services\viogpudo\Parameters` (DriverEntry's RegistryPath
//! plus `\Parameters`), which the INF's service section fills with defaults:
//! - `HardwareCursor` (default 1): 0 makes the driver report no hardware cursor, so Windows
//!   draws the pointer into the frame itself;
//! - `PreferredWidth` / `PreferredHeight` (absent by default): the resolution to start with
//!   instead of the monitor's preferred EDID mode.
//!
//! # User-mode source surfaces
//!
//! [`probe_and_lock`] gives the present path the bytes of `pSource`, which may be user-mode
//! memory that the user can decommit at any moment. Kernel addresses (above
//! `MM_USER_PROBE_ADDRESS`) are the OS's and are used as they are. A user address is described
//! by an MDL (`IoAllocateMdl`), probed and locked for reading
//! (`MmProbeAndLockPages(UserMode, IoReadAccess)`) and mapped into system space
//! (`MmGetSystemAddressForMdlSafe(NormalPagePriority | MdlMappingNoExecute)`), as the KMDOD
//! sample does; the guard reads through that mapping and `MmUnlockPages` + `IoFreeMdl` it on
//! drop. Once locked, the pages stay resident and mapped even if the user frees them.
//!
//! `MmProbeAndLockPages` reports a bad range by raising an exception, which only SEH catches.
//! Rust has no SEH, so the probe sits in a small C function, `os/nt_probe.c`
//! (`__try`/`__except(EXCEPTION_EXECUTE_HANDLER)`, returning the exception code), which
//! build.rs compiles with the EWDK's cl.exe through the `cc` crate, on Windows only. The same
//! file reads `MM_USER_PROBE_ADDRESS` (a data import on x64) and calls
//! `MmGetSystemAddressForMdlSafe` (a header macro). Alternatives not taken: `MmCopyMemory`
//! (returns a status instead of raising, but copies the whole surface, up to 132 MB at 8K, on
//! every present, and its page reserves it for physical or system addresses) and a hand-written
//! copy routine that returns a status (the kernel's own probing and fault handling would still
//! raise inside it). The MDL keeps the present path's single copy, as the sample does.

use core::cell::UnsafeCell;
use core::ffi::{c_void, CStr};
use core::marker::PhantomData;
use core::mem::MaybeUninit;
use core::ptr::{self, NonNull};
use core::sync::atomic::{compiler_fence, fence, AtomicU8, Ordering};

use viogpu_common::blit::Simd;
use viogpu_common::hal::{DmaRegion, Hal, RegisterAccess, PAGE_SIZE};
use wdk_sys::ntddk::{
    DbgPrintEx, IoAllocateMdl, IoFreeMdl, KeAcquireSpinLockRaiseToDpc, KeGetCurrentIrql,
    KeInitializeEvent, KeInitializeMutex, KeInitializeSpinLock, KeQueryUnbiasedInterruptTime,
    KeReleaseMutex, KeReleaseSpinLock, KeRestoreExtendedProcessorState,
    KeSaveExtendedProcessorState, KeSetEvent, KeStallExecutionProcessor, KeWaitForSingleObject,
    MmAllocateContiguousMemorySpecifyCache, MmFreeContiguousMemory, MmGetPhysicalAddress,
    MmUnlockPages, RtlGetEnabledExtendedFeatures, RtlQueryRegistryValues, SeSinglePrivilegeCheck,
};
use wdk_sys::{
    _DPFLTR_TYPE::DPFLTR_IHVVIDEO_ID, _EVENT_TYPE::SynchronizationEvent, _KWAIT_REASON::Executive,
    _MEMORY_CACHING_TYPE::MmCached, _MODE::KernelMode, _MODE::UserMode, APC_LEVEL, BOOLEAN,
    CLOCK_LEVEL, DISPATCH_LEVEL, DPFLTR_INFO_LEVEL, IO_NO_INCREMENT, KEVENT, KIRQL, KMUTEX,
    KPRIORITY, KPROCESSOR_MODE, KSPIN_LOCK, LARGE_INTEGER, LUID, MDL, NT_SUCCESS, PASSIVE_LEVEL,
    PHYSICAL_ADDRESS, REG_DWORD, REG_NONE, RTL_QUERY_REGISTRY_DIRECT, RTL_QUERY_REGISTRY_NOEXPAND,
    RTL_QUERY_REGISTRY_REQUIRED, RTL_QUERY_REGISTRY_TABLE, RTL_QUERY_REGISTRY_TYPECHECK,
    RTL_QUERY_REGISTRY_TYPECHECK_SHIFT, RTL_REGISTRY_ABSOLUTE, SIZE_T, ULONG, UNICODE_STRING,
    XSTATE_SAVE,
};

/// BOOLEAN FALSE, for the kernel routines' flag arguments.
const NO: BOOLEAN = 0;

/// KeStallExecutionProcessor's documentation asks for at most 50 microseconds per call.
const MAX_STALL_US: u32 = 50;

/// Longest trace line passed to DbgPrintEx, which transmits at most 512 bytes per call
/// (this leaves room for the newline and the NUL).
const MAX_TRACE_BYTES: usize = 500;

/// UTF-16 units kept for `<RegistryPath>\Parameters` and its NUL. Service key paths are
/// about 60 units long.
const PATH_CAPACITY: usize = 512;

/// UTF-16 units for a value name and its NUL.
const NAME_CAPACITY: usize = 64;

const PARAMETERS_SUFFIX: &str = "\\Parameters";

/// Virtqueues with their own spin lock: control and cursor.
const QUEUE_LOCKS: usize = 2;
const UNINITIALIZED: u8 = 0;
const INITIALIZING: u8 = 1;
const READY: u8 = 2;

/// The kernel objects and settings shared by the whole driver (see the module docs).
struct KernelState {
    /// UNINITIALIZED until [`init`] starts, READY once every field below is set up.
    phase: AtomicU8,
    /// One spin lock per virtqueue (control, cursor), held by [`RaiseGuard`]s.
    queue_locks: [UnsafeCell<KSPIN_LOCK>; QUEUE_LOCKS],
    /// Synchronization (auto-reset) event: set by the completion path, waited on by commands.
    completion: UnsafeCell<MaybeUninit<KEVENT>>,
    /// NUL-terminated `<RegistryPath>\Parameters`; empty (a lone NUL) if it did not fit.
    parameters_path: UnsafeCell<[u16; PATH_CAPACITY]>,
}

// SAFETY: `queue_locks` and `completion` are only used through the kernel's spin lock and event
// routines, which are made for concurrent callers, and only after `init` initialized them and
// published READY with Release ordering (readers check READY with Acquire). `parameters_path`
// is written only by `init` before READY and only read after it. `phase` is atomic.
unsafe impl Sync for KernelState {}

static STATE: KernelState = KernelState {
    phase: AtomicU8::new(UNINITIALIZED),
    queue_locks: [UnsafeCell::new(0), UnsafeCell::new(0)],
    completion: UnsafeCell::new(MaybeUninit::zeroed()),
    parameters_path: UnsafeCell::new([0; PATH_CAPACITY]),
};

fn is_ready() -> bool {
    STATE.phase.load(Ordering::Acquire) == READY
}

/// Initializes the driver-wide kernel objects and records where the settings live.
///
/// Call it once, first thing in DriverEntry; later calls do nothing.
///
/// # Safety
/// Runs at PASSIVE_LEVEL before any other function of this module is used and before any
/// adapter exists (DriverEntry satisfies both). `registry_path` is DriverEntry's RegistryPath
/// argument, or null: a valid UNICODE_STRING for the duration of the call.
pub unsafe fn init(registry_path: *const UNICODE_STRING) {
    if STATE
        .phase
        .compare_exchange(
            UNINITIALIZED,
            INITIALIZING,
            Ordering::AcqRel,
            Ordering::Acquire,
        )
        .is_err()
    {
        return;
    }
    // SAFETY: for all three calls: we won the race to INITIALIZING, so nothing else touches
    // the state until READY is published below; the caller runs us at PASSIVE_LEVEL and
    // vouches for `registry_path`.
    unsafe {
        initialize_spin_locks();
        initialize_event();
        record_parameters_path(registry_path);
    }
    STATE.phase.store(READY, Ordering::Release);
}

/// Copies `<registry_path>\Parameters` and a NUL into the static path buffer, or leaves it
/// empty when the path is missing or too long.
///
/// # Safety
/// The caller is [`init`] between INITIALIZING and READY (exclusive access to the buffer);
/// `registry_path` is null or a valid UNICODE_STRING.
unsafe fn record_parameters_path(registry_path: *const UNICODE_STRING) {
    // SAFETY: exclusive access to the buffer is the caller's contract.
    let buffer = unsafe { &mut *STATE.parameters_path.get() };
    buffer.fill(0);
    // SAFETY: null or valid, per the caller's contract.
    let Some(path) = (unsafe { registry_path.as_ref() }) else {
        return;
    };
    if path.Buffer.is_null() {
        return;
    }
    let units = usize::from(path.Length) / 2;
    // SAFETY: a valid UNICODE_STRING's Buffer holds Length bytes of UTF-16.
    let service_key = unsafe { core::slice::from_raw_parts(path.Buffer.cast_const(), units) };
    let suffix = PARAMETERS_SUFFIX.encode_utf16();
    let total = units + PARAMETERS_SUFFIX.len() + 1;
    if total > buffer.len() {
        return;
    }
    for (slot, unit) in buffer
        .iter_mut()
        .zip(service_key.iter().copied().chain(suffix))
    {
        *slot = unit;
    }
    // The NUL at index total - 1 is already there from the fill.
}

/// The current IRQL.
fn current_irql() -> KIRQL {
    // SAFETY: KeGetCurrentIrql may be called at any IRQL and has no arguments.
    unsafe { KeGetCurrentIrql() }
}

fn irql_at_most(level: u32) -> bool {
    u32::from(current_irql()) <= level
}

// ---------------------------------------------------------------------------------------------
// Debug output and settings
// ---------------------------------------------------------------------------------------------

/// Writes one line to the kernel debugger (component IHVVIDEO, level INFO: enable it with
/// `ed nt!Kd_IHVVIDEO_Mask 0xff` or the `Debug Print Filter` registry key).
///
/// The text is passed as the argument of a constant `"%s\n"` format, never as the format
/// itself. Lines longer than 500 bytes are cut. Nothing is printed at CLOCK_LEVEL or above
/// (bugcheck callbacks run at HIGH_LEVEL), where DbgPrintEx could deadlock.
pub fn trace_str(line: &str) {
    if !irql_at_most(CLOCK_LEVEL - 1) {
        return;
    }
    let mut text = [0u8; MAX_TRACE_BYTES + 1];
    let bytes = line.as_bytes();
    let len = bytes.len().min(MAX_TRACE_BYTES);
    if let (Some(dst), Some(src)) = (text.get_mut(..len), bytes.get(..len)) {
        dst.copy_from_slice(src);
    }
    // The last byte is always NUL; an interior NUL only ends the line early.
    if let Ok(text) = CStr::from_bytes_until_nul(&text) {
        debug_print(text);
    }
}

fn debug_print(text: &CStr) {
    // SAFETY: DbgPrintEx may be called at IRQL <= DIRQL; trace_str only calls it below
    // CLOCK_LEVEL, which is above every device IRQL. The format is a constant with exactly one
    // %s conversion, matched by one pointer to a NUL-terminated string that outlives the call;
    // no Unicode conversions (those need PASSIVE_LEVEL).
    let _status = unsafe {
        DbgPrintEx(
            DPFLTR_IHVVIDEO_ID as ULONG,
            DPFLTR_INFO_LEVEL,
            c"%s\n".as_ptr(),
            text.as_ptr(),
        )
    };
}

/// Whether the thread that called the current DDI may change the display configuration: it
/// must hold SeTcbPrivilege, enabled (LocalSystem services, such as a resolution agent, do;
/// ordinary users and even elevated administrators' processes do not).
///
/// DxgkDdiEscape runs at PASSIVE_LEVEL in the context of the user-mode thread that called
/// D3DKMTEscape, so the check applies to that thread's token. Anywhere else: `false`.
pub fn caller_may_configure() -> bool {
    /// SE_TCB_PRIVILEGE from wdm.h.
    const SE_TCB_PRIVILEGE: u32 = 7;
    if !irql_at_most(PASSIVE_LEVEL) {
        return false;
    }
    let tcb = LUID {
        LowPart: SE_TCB_PRIVILEGE,
        HighPart: 0,
    };
    // SAFETY: SeSinglePrivilegeCheck must run at PASSIVE_LEVEL (checked above); with
    // PreviousMode UserMode it checks the calling thread's (client's) token and only reads it.
    unsafe { SeSinglePrivilegeCheck(tcb, UserMode as KPROCESSOR_MODE) != 0 }
}

/// `XSTATE_MASK_AVX` (wdm.h: `XSTATE_MASK_GSSE`, `1 << XSTATE_GSSE` with `XSTATE_GSSE` 2): the
/// YMM registers' upper halves.
const XSTATE_MASK_AVX: u64 = 1 << 2;

/// Runs `f` with the AVX state saved, so that it may use YMM registers: kernel code must wrap
/// any use of them in `KeSaveExtendedProcessorState` / `KeRestoreExtendedProcessorState`
/// ("Using extended processor features in Windows drivers"). `f` gets a [`Simd`] that allows
/// AVX2 ([`Simd::avx2_state_saved`]) when the OS has enabled the AVX state
/// (`RtlGetEnabledExtendedFeatures`; saving a state the OS did not enable is a bugcheck) and
/// the save succeeded, else [`Simd::BASELINE`] with nothing saved. The save lives on this
/// stack frame, and the restore runs on this thread at the save's IRQL, as the restore's page
/// requires. Only at PASSIVE_LEVEL, the documented level of `RtlGetEnabledExtendedFeatures`
/// (the save itself allows DISPATCH_LEVEL; the present, the one caller, runs at
/// PASSIVE_LEVEL); anywhere else nothing is saved.
///
/// # Safety
///
/// `f` uses the [`Simd`] it gets only for copies that end before `f` returns, and neither
/// returns it nor keeps it anywhere: a copy made with it after the restore would overwrite
/// the YMM registers of the thread it interrupted.
pub unsafe fn with_avx_state<R>(f: impl FnOnce(Simd) -> R) -> R {
    if !irql_at_most(PASSIVE_LEVEL) || !avx_state_enabled() {
        return f(Simd::BASELINE);
    }
    let mut save = MaybeUninit::<XSTATE_SAVE>::uninit();
    // SAFETY: KeSaveExtendedProcessorState runs at IRQL <= DISPATCH_LEVEL (at PASSIVE_LEVEL,
    // checked above), with a mask of states the OS enabled (checked above), and writes the
    // XSTATE_SAVE it is given, here a local of this frame.
    let status = unsafe { KeSaveExtendedProcessorState(XSTATE_MASK_AVX, save.as_mut_ptr()) };
    if !NT_SUCCESS(status) {
        return f(Simd::BASELINE);
    }
    // SAFETY: the AVX state is saved on this thread (above) until the restore below, and the
    // caller's `f` makes its copies with the value before it returns and keeps it nowhere
    // (contract).
    let result = f(unsafe { Simd::avx2_state_saved() });
    // SAFETY: `save` was filled by the successful save above, on this thread; `f` returned, so
    // the IRQL is the save's again (the closure's raises are guards that end inside it).
    unsafe { KeRestoreExtendedProcessorState(save.as_mut_ptr()) };
    result
}

/// Whether the OS enabled the AVX state on this machine (it does on processors with AVX,
/// unless disabled at boot).
fn avx_state_enabled() -> bool {
    // SAFETY: RtlGetEnabledExtendedFeatures only reads the kernel's feature mask; it runs at
    // PASSIVE_LEVEL, its documented level (the caller checked).
    unsafe { RtlGetEnabledExtendedFeatures(XSTATE_MASK_AVX) & XSTATE_MASK_AVX != 0 }
}

/// Reads a REG_DWORD value of the driver's `Parameters` key (see the module docs).
///
/// `None` when the value is absent or not a REG_DWORD, when [`init`] has not run, when the
/// name is empty or does not fit, or when called above PASSIVE_LEVEL (the registry cannot be
/// read there).
pub fn registry_dword(name: &str) -> Option<u32> {
    if name.is_empty() || !is_ready() || !irql_at_most(PASSIVE_LEVEL) {
        return None;
    }
    // SAFETY: READY was observed with Acquire, after which the path is never written again.
    let path: &[u16; PATH_CAPACITY] = unsafe { &*STATE.parameters_path.get() };
    if path.first() == Some(&0) {
        return None;
    }
    let mut wide_name = [0u16; NAME_CAPACITY];
    for (index, unit) in name.encode_utf16().enumerate() {
        // Keep the last slot for the NUL; a NUL inside the name would cut it short.
        if unit == 0 || index + 1 >= NAME_CAPACITY {
            return None;
        }
        if let Some(slot) = wide_name.get_mut(index) {
            *slot = unit;
        }
    }
    query_registry_dword(path, &wide_name)
}

/// Pool tag of the registry query block ("vgQR", read backwards in a pool dump).
const QUERY_POOL_TAG: ULONG = u32::from_le_bytes(*b"vgQR");

/// What one registry query hands RtlQueryRegistryValues, in one nonpaged allocation: the
/// RtlQueryRegistryValues page asks for the query table in nonpaged pool; the value it writes
/// and the name it reads live next to it.
#[repr(C)]
struct QueryBlock {
    /// One DIRECT entry and the all-zero entry that ends the table.
    table: [RTL_QUERY_REGISTRY_TABLE; 2],
    /// Where the REG_DWORD is stored.
    value: ULONG,
    /// The value name, NUL-terminated UTF-16.
    name: [u16; NAME_CAPACITY],
}

/// One RtlQueryRegistryValues call for one REG_DWORD value.
///
/// `path` is NUL-terminated UTF-16; `name` holds a NUL-terminated UTF-16 name.
fn query_registry_dword(path: &[u16], name: &[u16; NAME_CAPACITY]) -> Option<u32> {
    let size = core::mem::size_of::<QueryBlock>() as SIZE_T;
    // At PASSIVE_LEVEL (checked by registry_dword): null or zeroed nonpaged pool of `size`
    // bytes, 16-byte aligned (a pool block), enough for QueryBlock.
    let block = super::nt_pool::allocate_zeroed(size, QUERY_POOL_TAG).cast::<QueryBlock>();
    let block = NonNull::new(block)?;
    let raw = block.as_ptr();
    // SAFETY: a field address of the live allocation `raw`; nothing is read or referenced.
    let name_ptr = unsafe { ptr::addr_of_mut!((*raw).name) }.cast::<u16>();
    // SAFETY: as above.
    let value_ptr = unsafe { ptr::addr_of_mut!((*raw).value) }.cast::<c_void>();
    // SAFETY: as above.
    let table_ptr = unsafe { ptr::addr_of_mut!((*raw).table) }.cast::<RTL_QUERY_REGISTRY_TABLE>();
    let entry = RTL_QUERY_REGISTRY_TABLE {
        QueryRoutine: None,
        // DIRECT: store the value at EntryContext; REQUIRED: fail when it is absent (so
        // "absent" is distinguishable from 0); TYPECHECK: fail unless it is a REG_DWORD, so
        // a differently typed value can never write past `value` (and, from Windows 8, DIRECT
        // without TYPECHECK on an untrusted hive is a bugcheck from kernel mode); NOEXPAND:
        // the page asks kernel-mode callers for it. The four combine: NOEXPAND only stops
        // REG_EXPAND_SZ/REG_MULTI_SZ expansion, which TYPECHECK has already ruled out here.
        Flags: RTL_QUERY_REGISTRY_DIRECT
            | RTL_QUERY_REGISTRY_REQUIRED
            | RTL_QUERY_REGISTRY_TYPECHECK
            | RTL_QUERY_REGISTRY_NOEXPAND,
        Name: name_ptr,
        EntryContext: value_ptr,
        DefaultType: (REG_DWORD << RTL_QUERY_REGISTRY_TYPECHECK_SHIFT) | REG_NONE,
        DefaultData: ptr::null_mut(),
        DefaultLength: 0,
    };
    let end = RTL_QUERY_REGISTRY_TABLE {
        QueryRoutine: None,
        Flags: 0,
        Name: ptr::null_mut(),
        EntryContext: ptr::null_mut(),
        DefaultType: 0,
        DefaultData: ptr::null_mut(),
        DefaultLength: 0,
    };
    // SAFETY: `raw` is a live, exclusively owned, suitably aligned QueryBlock-sized
    // allocation; the write initializes all of it.
    unsafe {
        raw.write(QueryBlock {
            table: [entry, end],
            value: 0,
            name: *name,
        });
    }
    // SAFETY: RtlQueryRegistryValues requires PASSIVE_LEVEL, which registry_dword checked.
    // With RTL_REGISTRY_ABSOLUTE, `path` is a full NUL-terminated registry path; the table
    // (in nonpaged pool) has one DIRECT entry whose Name is NUL-terminated and whose
    // EntryContext points to a ULONG, which is where a REG_DWORD is stored (TYPECHECK rejects
    // every other type), and it ends with a zeroed entry. Everything outlives the call;
    // Context and Environment are unused.
    let status = unsafe {
        RtlQueryRegistryValues(
            RTL_REGISTRY_ABSOLUTE,
            path.as_ptr(),
            table_ptr,
            ptr::null_mut(),
            ptr::null_mut(),
        )
    };
    // SAFETY: initialized above; RtlQueryRegistryValues has returned.
    let value = unsafe { value_ptr.cast::<ULONG>().read() };
    // SAFETY: allocated above with this tag, freed once, not used afterwards.
    unsafe { super::nt_pool::free(raw.cast::<c_void>(), QUERY_POOL_TAG) };
    NT_SUCCESS(status).then_some(value)
}

// ---------------------------------------------------------------------------------------------
// DMA memory
// ---------------------------------------------------------------------------------------------

/// Contiguous, cached, nonpaged kernel memory for the device (virtio DMA is cache-coherent on
/// x86, so the CPU's view needs no flushing).
#[derive(Clone, Copy, Debug, Default)]
pub struct Dma;

impl Dma {
    /// The kernel's DMA allocator; always available.
    pub fn current() -> Option<Self> {
        Some(Self)
    }
}

// SAFETY: each region comes from one MmAllocateContiguousMemorySpecifyCache call of `len`
// bytes (the request rounded up to whole pages), so `virt` is valid for `len` bytes, belongs
// to no one else, and is physically contiguous; the allocator aligns it to a page, so its
// physical address (from MmGetPhysicalAddress of the first byte) is page-aligned too; it is
// zeroed before it is returned.
unsafe impl Hal for Dma {
    fn dma_alloc(&self, len: usize) -> Option<DmaRegion> {
        if len == 0 {
            return None;
        }
        let len = len.checked_next_multiple_of(PAGE_SIZE)?;
        let virt = allocate_contiguous(len)?;
        // SAFETY: `virt` is a fresh allocation of `len` writable bytes that nothing else
        // references yet.
        unsafe { ptr::write_bytes(virt.as_ptr(), 0, len) };
        let phys = physical_address(virt);
        Some(DmaRegion { virt, phys, len })
    }

    unsafe fn dma_free(&self, region: DmaRegion) {
        // MmFreeContiguousMemory needs IRQL <= DISPATCH_LEVEL. Above it (only the bugcheck
        // path runs there, and it frees nothing on purpose) leaking is the only safe choice.
        if irql_at_most(DISPATCH_LEVEL) {
            // SAFETY: the caller keeps Hal::dma_free's contract: the region came from
            // dma_alloc, is freed once, and the device no longer uses it.
            unsafe { free_contiguous(region.virt) };
        }
    }
}

/// `len` bytes (a multiple of the page size) of contiguous cached memory anywhere in physical
/// memory, or `None`.
fn allocate_contiguous(len: usize) -> Option<NonNull<u8>> {
    if !irql_at_most(DISPATCH_LEVEL) {
        return None;
    }
    let bytes = SIZE_T::try_from(len).ok()?;
    let lowest = PHYSICAL_ADDRESS { QuadPart: 0 };
    let highest = PHYSICAL_ADDRESS { QuadPart: -1 }; // all ones: no upper limit
    let no_boundary = PHYSICAL_ADDRESS { QuadPart: 0 };
    // SAFETY: MmAllocateContiguousMemorySpecifyCache may be called at IRQL <= DISPATCH_LEVEL
    // (checked above). A zero boundary means "no boundary restriction"; the address range is
    // all of physical memory; it returns NULL on failure, which NonNull::new turns into None.
    let virt = unsafe {
        MmAllocateContiguousMemorySpecifyCache(bytes, lowest, highest, no_boundary, MmCached)
    };
    NonNull::new(virt.cast::<u8>())
}

/// The physical address of the byte at `virt`, a nonpaged system address, given to the device
/// as its DMA address.
///
/// MmGetPhysicalAddress's page says not to use it for DMA: a device behind an IOMMU needs the
/// logical address of the OS's DMA API. The two agree exactly when the device does not go
/// through the platform's translation, which virtio guarantees while
/// VIRTIO_F_ACCESS_PLATFORM is not negotiated; the transport never negotiates it, and a
/// device that requires it is refused at StartDevice (`Features::ACCESS_PLATFORM`,
/// docs/windows.md "DMA addresses", which also describes the DMA-adapter follow-up).
fn physical_address(virt: NonNull<u8>) -> u64 {
    // SAFETY: MmGetPhysicalAddress may be called at IRQL <= DISPATCH_LEVEL (our only caller,
    // dma_alloc, got here through allocate_contiguous's check) and `virt` is a valid nonpaged
    // address we just allocated.
    let phys = unsafe { MmGetPhysicalAddress(virt.as_ptr().cast::<c_void>()) };
    // SAFETY: PHYSICAL_ADDRESS is a LARGE_INTEGER union of plain integers; every bit pattern is
    // a valid QuadPart.
    let quad = unsafe { phys.QuadPart };
    quad as u64
}

/// Returns memory from [`allocate_contiguous`].
///
/// # Safety
/// `virt` came from allocate_contiguous, is freed once, nothing uses it afterwards, and the
/// current IRQL is at most DISPATCH_LEVEL.
unsafe fn free_contiguous(virt: NonNull<u8>) {
    // SAFETY: MmFreeContiguousMemory accepts IRQL <= DISPATCH_LEVEL (Windows Server 2008 and
    // later) and the base address returned by MmAllocateContiguousMemorySpecifyCache; the
    // caller guarantees both and that the memory is no longer used.
    unsafe { MmFreeContiguousMemory(virt.as_ptr().cast::<c_void>()) };
}

// ---------------------------------------------------------------------------------------------
// Registers
// ---------------------------------------------------------------------------------------------

/// A device register window mapped by dxgkrnl (DxgkCbMapMemory).
///
/// Accesses are volatile and of exactly the register's width, like the WDK's
/// READ_REGISTER_UCHAR/USHORT/ULONG and WRITE_REGISTER_* on x64 (a compiler barrier, the
/// access, and after a write a full fence). Offsets outside the window, or not aligned to the
/// width, read as all ones and drop writes. Copies are views of the same mapping (cloning
/// allocates nothing); the mapping must outlive every copy.
#[derive(Debug, Clone)]
pub struct Mmio {
    base: usize,
    len: usize,
}

impl Mmio {
    /// The window `base..base + len`; `None` if `base` is null or the range wraps.
    ///
    /// # Safety
    /// `base..base + len` was returned by the dxgkrnl memory-mapping callback for a device
    /// register range (uncached) and stays mapped while the `Mmio` lives.
    pub unsafe fn new(base: usize, len: usize) -> Option<Self> {
        if base == 0 || base.checked_add(len).is_none() {
            return None;
        }
        Some(Self { base, len })
    }

    /// The address of the register at `offset`, if it lies in the window and is aligned.
    fn address(&self, offset: usize, width: usize) -> Option<usize> {
        let end = offset.checked_add(width)?;
        let address = self.base.checked_add(offset)?;
        (end <= self.len && address % width == 0).then_some(address)
    }

    fn read<T: Copy>(&self, offset: usize) -> Option<T> {
        let address = self.address(offset, core::mem::size_of::<T>())?;
        compiler_fence(Ordering::SeqCst);
        // SAFETY: `address` lies inside the mapped window (checked above, and the caller of
        // `new` vouched for the mapping) and is aligned for T; device registers are read with
        // a single volatile access of T's width. T is u8, u16 or u32 (see RegisterAccess).
        Some(unsafe { ptr::read_volatile(address as *const T) })
    }

    fn write<T: Copy>(&self, offset: usize, value: T) {
        if let Some(address) = self.address(offset, core::mem::size_of::<T>()) {
            compiler_fence(Ordering::SeqCst);
            // SAFETY: as in `read`: inside the mapped window, aligned, one volatile access.
            unsafe { ptr::write_volatile(address as *mut T, value) };
            fence(Ordering::SeqCst);
        }
    }
}

// x86 is little-endian, as virtio registers are, so native-width accesses need no swapping.
impl RegisterAccess for Mmio {
    fn read_u8(&self, offset: usize) -> u8 {
        self.read(offset).unwrap_or(u8::MAX)
    }
    fn read_u16(&self, offset: usize) -> u16 {
        self.read(offset).unwrap_or(u16::MAX)
    }
    fn read_u32(&self, offset: usize) -> u32 {
        self.read(offset).unwrap_or(u32::MAX)
    }
    fn write_u8(&self, offset: usize, value: u8) {
        self.write(offset, value);
    }
    fn write_u16(&self, offset: usize, value: u16) {
        self.write(offset, value);
    }
    fn write_u32(&self, offset: usize, value: u32) {
        self.write(offset, value);
    }
}

// ---------------------------------------------------------------------------------------------
// Waiting, time and IRQL
// ---------------------------------------------------------------------------------------------

/// Waiting, time and IRQL in the kernel, over the driver-wide objects set up by [`init`].
#[derive(Clone, Copy, Debug)]
pub struct OsPlatform {
    _ready: (),
}

impl OsPlatform {
    /// The kernel platform, once [`init`] has run.
    pub fn current() -> Option<Self> {
        is_ready().then_some(Self { _ready: () })
    }
}

/// Holds one queue's spin lock (and so DISPATCH_LEVEL) until dropped.
///
/// Guards must not nest on one processor (the core never holds two queue locks). Above
/// DISPATCH_LEVEL (the bugcheck path, where every other processor is frozen) the lock cannot
/// be taken, and the guard holds nothing.
pub struct RaiseGuard {
    /// The lock taken and the IRQL to return to, if the lock was taken.
    held: Option<(&'static UnsafeCell<KSPIN_LOCK>, KIRQL)>,
    /// Released on the processor that acquired it: not Send.
    _not_send: PhantomData<*const ()>,
}

impl Drop for RaiseGuard {
    fn drop(&mut self) {
        if let Some((lock, previous)) = self.held.take() {
            // SAFETY: this guard acquired `lock` with acquire_queue_lock on this processor
            // and releases it exactly once, restoring the IRQL that call returned.
            unsafe { release_queue_lock(lock, previous) };
        }
    }
}

impl viogpu_common::gpu::Platform for OsPlatform {
    type RaiseGuard = RaiseGuard;

    fn raise(&self, queue: u16) -> RaiseGuard {
        // Any index beyond the known queues shares the last lock: correct, only coarser.
        let index = usize::from(queue).min(QUEUE_LOCKS - 1);
        let held = STATE
            .queue_locks
            .get(index)
            .filter(|_| irql_at_most(DISPATCH_LEVEL))
            .map(|lock| (lock, acquire_queue_lock(lock)));
        RaiseGuard {
            held,
            _not_send: PhantomData,
        }
    }

    fn now_us(&self) -> u64 {
        interrupt_time_100ns() / 10
    }

    fn wait_for_completion(&self, timeout_us: u64) {
        if irql_at_most(APC_LEVEL) {
            wait_for_event(timeout_us);
        } else {
            // No waiting at DISPATCH_LEVEL or above: spin a little and let the caller re-check
            // its queue (returning early is allowed).
            stall(
                u32::try_from(timeout_us)
                    .unwrap_or(u32::MAX)
                    .min(MAX_STALL_US),
            );
        }
    }

    fn signal_completion(&self) {
        // KeSetEvent needs IRQL <= DISPATCH_LEVEL. Above it (an ISR) the waiter still sees the
        // completion when its time slice ends.
        if irql_at_most(DISPATCH_LEVEL) {
            set_event();
        }
    }

    fn stall_us(&self, us: u32) {
        let mut left = us;
        while left > 0 {
            let step = left.min(MAX_STALL_US);
            stall(step);
            left -= step;
        }
    }
}

/// Initializes the queue spin locks.
///
/// # Safety
/// Only [`init`] calls it, while it has exclusive access to the state.
unsafe fn initialize_spin_locks() {
    for lock in &STATE.queue_locks {
        // SAFETY: KeInitializeSpinLock may be called at any IRQL; it writes the static's
        // nonpaged KSPIN_LOCK, which no one else touches yet (caller's contract).
        unsafe { KeInitializeSpinLock(lock.get()) };
    }
}

/// Initializes the completion event as a not-signalled synchronization (auto-reset) event.
///
/// # Safety
/// Only [`init`] calls it, while it has exclusive access to the state.
unsafe fn initialize_event() {
    // SAFETY: KeInitializeEvent may be called at any IRQL; it writes the static's storage,
    // which is nonpaged (the image's data section), aligned for a KEVENT and not touched by
    // anyone else yet (caller's contract).
    unsafe {
        KeInitializeEvent(
            STATE.completion.get().cast::<KEVENT>(),
            SynchronizationEvent,
            NO,
        )
    };
}

/// Acquires one of the queue spin locks, raising to DISPATCH_LEVEL; returns the previous IRQL.
fn acquire_queue_lock(lock: &'static UnsafeCell<KSPIN_LOCK>) -> KIRQL {
    // SAFETY: KeAcquireSpinLockRaiseToDpc may be called at IRQL <= DISPATCH_LEVEL (raise
    // checked it) on an initialized spin lock: OsPlatform exists only after init initialized
    // every queue lock. The lock is released by the RaiseGuard that stores the returned IRQL.
    unsafe { KeAcquireSpinLockRaiseToDpc(lock.get()) }
}

/// Releases a queue spin lock and returns to `previous` IRQL.
///
/// # Safety
/// This processor holds `lock`, taken by [`acquire_queue_lock`], which returned `previous`.
unsafe fn release_queue_lock(lock: &'static UnsafeCell<KSPIN_LOCK>, previous: KIRQL) {
    // SAFETY: KeReleaseSpinLock runs at DISPATCH_LEVEL, where the held lock keeps us, with
    // the IRQL saved by the matching acquire (caller's contract).
    unsafe { KeReleaseSpinLock(lock.get(), previous) };
}

/// Time since boot in 100 ns units, not counting sleep and hibernation.
fn interrupt_time_100ns() -> u64 {
    // SAFETY: KeQueryUnbiasedInterruptTime may be called at any IRQL and has no arguments.
    unsafe { KeQueryUnbiasedInterruptTime() }
}

/// Waits on the completion event for at most `timeout_us` microseconds.
fn wait_for_event(timeout_us: u64) {
    // A relative timeout is negative, in 100 ns units.
    let ticks = i64::try_from(timeout_us.saturating_mul(10)).unwrap_or(i64::MAX);
    let mut timeout = LARGE_INTEGER { QuadPart: -ticks };
    // SAFETY: KeWaitForSingleObject with a nonzero timeout needs IRQL <= APC_LEVEL (checked by
    // wait_for_completion; a zero timeout is allowed up to DISPATCH_LEVEL). The event is an
    // initialized dispatcher object in nonpaged memory (OsPlatform exists only after init);
    // the wait is non-alertable, in kernel mode, for the Executive; `timeout` outlives the
    // call. The status (success or STATUS_TIMEOUT) does not matter: the caller re-checks.
    let _status = unsafe {
        KeWaitForSingleObject(
            STATE.completion.get().cast::<c_void>(),
            Executive,
            KernelMode as KPROCESSOR_MODE,
            NO,
            ptr::addr_of_mut!(timeout),
        )
    };
}

/// Signals the completion event, releasing one waiter.
fn set_event() {
    // SAFETY: KeSetEvent may be called at IRQL <= DISPATCH_LEVEL (signal_completion checked
    // it) with Wait = FALSE, on an initialized event (OsPlatform exists only after init).
    let _previous_state = unsafe {
        KeSetEvent(
            STATE.completion.get().cast::<KEVENT>(),
            IO_NO_INCREMENT as KPRIORITY,
            NO,
        )
    };
}

/// Busy-waits `us` microseconds (at most [`MAX_STALL_US`] per the routine's guidance).
fn stall(us: u32) {
    // SAFETY: KeStallExecutionProcessor may be called at any IRQL; callers keep each call at
    // or below the documented 50 microseconds.
    unsafe { KeStallExecutionProcessor(us) };
}

// ---------------------------------------------------------------------------------------------
// The PASSIVE_LEVEL lock
// ---------------------------------------------------------------------------------------------

/// The waitable lock of state that only PASSIVE_LEVEL code touches and that is held across
/// device waits: a KMUTEX. A contender sleeps instead of spinning; the holder stays at
/// PASSIVE_LEVEL (only normal kernel APCs are disabled), so it may still wait with a timeout,
/// allocate and read the registry. The hosted backend's lock of the same name checks the
/// rules (PASSIVE_LEVEL only, never taken twice by one thread) in every simulator test.
///
/// KeInitializeMutex needs the object's final address, and the lock lives in the adapter,
/// which is built on the stack and then moved into its pool allocation; so the KMUTEX is
/// initialized on first use, by the first locker (a compare-exchange elects it, the others
/// wait the few instructions it takes).
pub struct PassiveMutex<T> {
    phase: AtomicU8,
    mutex: UnsafeCell<MaybeUninit<KMUTEX>>,
    value: UnsafeCell<T>,
}

// SAFETY: the value is reached only through a guard, which exists only while the KMUTEX is
// held, so one thread at a time has it; the KMUTEX itself is made for concurrent callers.
unsafe impl<T: Send> Sync for PassiveMutex<T> {}
// SAFETY: moving the lock moves the value; the KMUTEX is not yet initialized while the lock
// can still move (it is initialized at the first `lock`, through a shared reference, after
// which the owner no longer moves it: the adapter stays in its allocation).
unsafe impl<T: Send> Send for PassiveMutex<T> {}

impl<T> PassiveMutex<T> {
    /// A lock around `value`; `name` is for the hosted backend's reports.
    pub const fn new(_name: &'static str, value: T) -> Self {
        Self {
            phase: AtomicU8::new(UNINITIALIZED),
            mutex: UnsafeCell::new(MaybeUninit::zeroed()),
            value: UnsafeCell::new(value),
        }
    }

    fn kmutex(&self) -> *mut KMUTEX {
        self.mutex.get().cast::<KMUTEX>()
    }

    /// Initializes the KMUTEX once, at its final address.
    fn ensure_initialized(&self) {
        match self.phase.compare_exchange(
            UNINITIALIZED,
            INITIALIZING,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => {
                // SAFETY: we won the race, so no one else touches the object until READY.
                unsafe { initialize_kmutex(self.kmutex()) };
                self.phase.store(READY, Ordering::Release);
            }
            Err(_) => {
                while self.phase.load(Ordering::Acquire) != READY {
                    core::hint::spin_loop();
                }
            }
        }
    }

    /// Waits for the lock (KeWaitForSingleObject on the KMUTEX; PASSIVE_LEVEL callers only).
    pub fn lock(&self) -> PassiveGuard<'_, T> {
        self.ensure_initialized();
        // SAFETY: initialized above, in nonpaged memory (the adapter's pool allocation).
        unsafe { wait_for_kmutex(self.kmutex()) };
        PassiveGuard { lock: self }
    }
}

/// Access to the locked value; releases the KMUTEX when dropped.
pub struct PassiveGuard<'a, T> {
    lock: &'a PassiveMutex<T>,
}

impl<T> core::ops::Deref for PassiveGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard exists only while this thread holds the KMUTEX.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> core::ops::DerefMut for PassiveGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as for deref; `&mut self` makes this the only view through the guard.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T> Drop for PassiveGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: this thread holds the KMUTEX (it waited for it in `lock`).
        unsafe { release_kmutex(self.lock.kmutex()) };
    }
}

/// KeInitializeMutex (any IRQL) on an object no one else uses yet.
///
/// # Safety
/// `mutex` points to writable nonpaged memory for a KMUTEX that no other thread uses.
unsafe fn initialize_kmutex(mutex: *mut KMUTEX) {
    // SAFETY: the caller's contract; level 0 is what drivers pass.
    unsafe { KeInitializeMutex(mutex, 0) };
}

/// KeWaitForSingleObject on a KMUTEX without a timeout (IRQL <= APC_LEVEL; our callers run at
/// PASSIVE_LEVEL).
///
/// # Safety
/// `mutex` is an initialized KMUTEX in nonpaged memory.
unsafe fn wait_for_kmutex(mutex: *mut KMUTEX) {
    // SAFETY: the caller's contract; a non-alertable kernel-mode wait with no timeout (null)
    // returns only STATUS_SUCCESS once the mutex is ours.
    let _status = unsafe {
        KeWaitForSingleObject(
            mutex.cast::<c_void>(),
            Executive,
            KernelMode as KPROCESSOR_MODE,
            NO,
            ptr::null_mut(),
        )
    };
}

/// KeReleaseMutex (IRQL <= DISPATCH_LEVEL) with Wait = FALSE.
///
/// # Safety
/// `mutex` is an initialized KMUTEX the calling thread holds.
unsafe fn release_kmutex(mutex: *mut KMUTEX) {
    // SAFETY: the caller's contract.
    let _previous = unsafe { KeReleaseMutex(mutex, NO) };
}

// ---------------------------------------------------------------------------------------------
// User-mode source surfaces (see the module docs)
// ---------------------------------------------------------------------------------------------

// The C functions of `os/nt_probe.c`, linked from the static library build.rs makes.
extern "C" {
    fn viogpudo_user_probe_address() -> usize;
    fn viogpudo_probe_and_lock_for_read(mdl: *mut MDL) -> crate::ddi::NTSTATUS;
    fn viogpudo_system_address_for_mdl(mdl: *mut MDL) -> *mut c_void;
}

/// Source bytes the driver may read: kernel memory as it is, or user memory probed, locked
/// and mapped into system space through an MDL (unlocked and freed when the guard is dropped).
pub struct LockedPages {
    /// The MDL of locked user memory; `None` for kernel memory (nothing to unlock).
    mdl: Option<NonNull<MDL>>,
    /// Where the bytes are read: the kernel address, or the MDL's system-space mapping.
    address: *const u8,
    len: usize,
}

impl LockedPages {
    /// The locked bytes, valid while the guard lives.
    pub fn bytes(&self) -> &[u8] {
        if self.address.is_null() || self.len == 0 {
            return &[];
        }
        // SAFETY: `probe_and_lock` built the guard over `len` bytes at `address`: kernel memory
        // its caller vouched for while the guard lives, or the system-space mapping of pages
        // the MDL holds locked until `drop`.
        unsafe { core::slice::from_raw_parts(self.address, self.len) }
    }
}

impl Drop for LockedPages {
    fn drop(&mut self) {
        if let Some(mdl) = self.mdl.take() {
            // SAFETY: the MDL came from IoAllocateMdl and its pages were locked by the probe
            // in `probe_and_lock`; this is its only release, and `bytes` cannot outlive us.
            unsafe {
                unlock_pages(mdl);
                free_mdl(mdl);
            }
        }
    }
}

/// Makes `len` bytes at `offset` into the surface at `surface` readable for the life of the
/// returned guard (see the module docs): a user-mode range is probed, locked and mapped, a
/// kernel one used as it is. Whether it is user memory is decided by `surface`, the OS's
/// pointer, never by the offset address, which a bad pitch could push past
/// `MM_USER_PROBE_ADDRESS`: a user range must lie below it entirely.
///
/// Errors: the exception code of the probe (`STATUS_ACCESS_VIOLATION` for a range that is not
/// entirely valid user memory; the same status, ours, for one that leaves user space),
/// `STATUS_INSUFFICIENT_RESOURCES` when no MDL or system mapping can be had (as the sample),
/// `STATUS_INVALID_PARAMETER` for a range an MDL cannot describe,
/// `STATUS_INVALID_DEVICE_REQUEST` above APC_LEVEL (user memory cannot be probed there).
/// Nothing stays locked or allocated on an error.
///
/// # Safety
/// If `surface` is a kernel address (above `MM_USER_PROBE_ADDRESS`), `len` bytes at `offset`
/// into it are valid for reads while the guard lives. A user surface needs no promise beyond
/// being the current process's: the range is checked and probed.
pub unsafe fn probe_and_lock(
    surface: *const u8,
    offset: usize,
    len: usize,
) -> Result<LockedPages, crate::ddi::NTSTATUS> {
    use super::STATUS_ACCESS_VIOLATION;
    use crate::ddi::{
        STATUS_INSUFFICIENT_RESOURCES, STATUS_INVALID_DEVICE_REQUEST, STATUS_INVALID_PARAMETER,
    };
    let address = surface.wrapping_add(offset);
    // The KMDOD sample's test: at or below MM_USER_PROBE_ADDRESS is user memory.
    let user = (surface as usize) <= user_probe_address();
    if user {
        let end = (surface as usize)
            .checked_add(offset)
            .and_then(|start| start.checked_add(len));
        if end.is_none_or(|end| end > user_probe_address()) {
            return Err(STATUS_ACCESS_VIOLATION);
        }
    }
    if len == 0 || !user {
        return Ok(LockedPages {
            mdl: None,
            address,
            len,
        });
    }
    if !irql_at_most(APC_LEVEL) {
        return Err(STATUS_INVALID_DEVICE_REQUEST);
    }
    let length = ULONG::try_from(len).map_err(|_| STATUS_INVALID_PARAMETER)?;
    let mdl = allocate_mdl(address, length).ok_or(STATUS_INSUFFICIENT_RESOURCES)?;
    let status = probe_for_read(mdl);
    if !NT_SUCCESS(status) {
        // SAFETY: the MDL is ours, from IoAllocateMdl, and the failed probe locked nothing.
        unsafe { free_mdl(mdl) };
        return Err(status);
    }
    // SAFETY: the probe above locked the MDL's pages.
    let Some(system) = (unsafe { system_address(mdl) }) else {
        // SAFETY: the pages are locked (above) and the MDL is ours; each released once.
        unsafe {
            unlock_pages(mdl);
            free_mdl(mdl);
        }
        return Err(STATUS_INSUFFICIENT_RESOURCES);
    };
    Ok(LockedPages {
        mdl: Some(mdl),
        address: system.as_ptr().cast_const(),
        len,
    })
}

/// MM_USER_PROBE_ADDRESS.
fn user_probe_address() -> usize {
    // SAFETY: the C function only reads the kernel's exported MmUserProbeAddress (set at boot,
    // never written afterwards); any IRQL.
    unsafe { viogpudo_user_probe_address() }
}

/// An MDL describing `length` bytes at `address`, not yet locked; `None` when the kernel has
/// none to give (or the range is too long for one MDL).
fn allocate_mdl(address: *const u8, length: ULONG) -> Option<NonNull<MDL>> {
    // SAFETY: IoAllocateMdl may be called at IRQL <= DISPATCH_LEVEL (our caller checked
    // APC_LEVEL); it only records the range, which it does not touch. No IRP, no secondary
    // buffer, no quota charge; NULL on failure, which NonNull::new turns into None.
    let mdl = unsafe {
        IoAllocateMdl(
            address.cast_mut().cast::<c_void>(),
            length,
            NO,
            NO,
            ptr::null_mut(),
        )
    };
    NonNull::new(mdl)
}

/// MmProbeAndLockPages(UserMode, IoReadAccess) through the C shim: success, or the exception
/// code the probe raised, with nothing locked.
fn probe_for_read(mdl: NonNull<MDL>) -> crate::ddi::NTSTATUS {
    // SAFETY: `mdl` is a fresh, unlocked MDL from IoAllocateMdl; the present DDI runs at
    // PASSIVE_LEVEL (our caller checked at most APC_LEVEL, MmProbeAndLockPages' limit) in the
    // context of the process that passed the user address. The shim catches the exception a
    // bad range raises and returns its code, so no exception crosses into Rust.
    unsafe { viogpudo_probe_and_lock_for_read(mdl.as_ptr()) }
}

/// The system-space address of the locked pages of `mdl`, or `None` when no mapping can be
/// had.
///
/// # Safety
/// The pages of `mdl` are locked.
unsafe fn system_address(mdl: NonNull<MDL>) -> Option<NonNull<u8>> {
    // SAFETY: MmGetSystemAddressForMdlSafe (in the C shim) needs locked pages (the caller's
    // promise) and IRQL <= DISPATCH_LEVEL (we run at most at APC_LEVEL); it returns NULL
    // rather than bugchecking when system PTEs run out.
    let va = unsafe { viogpudo_system_address_for_mdl(mdl.as_ptr()) };
    NonNull::new(va.cast::<u8>())
}

/// MmUnlockPages: releases the locked pages and their system-space mapping.
///
/// # Safety
/// The pages of `mdl` are locked by a successful probe, and not unlocked since; nothing reads
/// through the mapping afterwards.
unsafe fn unlock_pages(mdl: NonNull<MDL>) {
    // SAFETY: MmUnlockPages may be called at IRQL <= DISPATCH_LEVEL (a guard is dropped in the
    // present DDI, at PASSIVE_LEVEL) on an MDL whose pages MmProbeAndLockPages locked, which
    // the caller guarantees.
    unsafe { MmUnlockPages(mdl.as_ptr()) };
}

/// IoFreeMdl.
///
/// # Safety
/// `mdl` came from IoAllocateMdl, its pages are not locked (never, or unlocked), and it is
/// freed once.
unsafe fn free_mdl(mdl: NonNull<MDL>) {
    // SAFETY: IoFreeMdl may be called at IRQL <= DISPATCH_LEVEL on an MDL from IoAllocateMdl
    // whose pages are unlocked, freed once: the caller's promise.
    unsafe { IoFreeMdl(mdl.as_ptr()) };
}

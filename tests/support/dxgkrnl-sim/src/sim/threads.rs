//! [`OsThread`]: the driver's DDIs called from threads other than the simulator's, as Windows
//! calls them (a desktop compositor thread presenting, the input thread moving the pointer, a
//! second processor taking interrupts, a dying processor drawing the blue screen), while the
//! simulator's own thread runs mode changes and power transitions.
//!
//! Every call goes through the same `AdapterState::run_ddi` as the simulator's, so dxgkrnl's
//! synchronization levels (`sync.rs`) decide what overlaps what, and the IRQL rules are
//! checked on every thread. A thread must [`enter`](OsThread::enter) first: that installs the
//! adapter's hosted OS environment on it, as the simulator did on its own thread at load.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use viogpudo::ddi::*;
use viogpudo::os::hosted;

use crate::adapter::AdapterState;
use crate::callbacks;
use crate::env::SimEnv;

use super::display::{
    check_no_locks_left, pointer_position_args, pointer_shape_args, present_args, user_copy,
};
use super::{PointerShape, Surface};

/// A handle for calling the driver from another thread (see the module docs). Cheap to clone.
#[derive(Clone)]
pub struct OsThread {
    adapter: Arc<AdapterState>,
    init: KMDDOD_INITIALIZATION_DATA,
}

// SAFETY: the initialization data is a table of function pointers and plain numbers, which
// any thread may call; the adapter state is shared behind atomics and locks.
unsafe impl Send for OsThread {}

/// This thread's installation of the adapter's OS environment; undone when dropped.
pub struct ThreadEnv {
    adapter: Arc<AdapterState>,
}

impl Drop for ThreadEnv {
    fn drop(&mut self) {
        callbacks::leave_thread(&self.adapter);
        hosted::uninstall();
    }
}

impl OsThread {
    pub(crate) fn new(adapter: Arc<AdapterState>, init: KMDDOD_INITIALIZATION_DATA) -> Self {
        Self { adapter, init }
    }

    /// Makes this thread one of the adapter's OS threads until the returned value drops.
    pub fn enter(&self) -> ThreadEnv {
        callbacks::enter_thread(&self.adapter);
        hosted::install(Arc::new(SimEnv::new(Arc::clone(&self.adapter))));
        ThreadEnv {
            adapter: Arc::clone(&self.adapter),
        }
    }

    fn context(&self) -> HANDLE {
        self.adapter.context.load(Ordering::SeqCst)
    }

    fn call<A>(
        &self,
        name: &'static str,
        ddi: Option<unsafe extern "system" fn(HANDLE, A) -> NTSTATUS>,
        args: A,
    ) -> NTSTATUS {
        let Some(f) = ddi else {
            return STATUS_NOT_IMPLEMENTED;
        };
        let context = self.context();
        // SAFETY: the driver's own DDI with the context its AddDevice returned and an argument
        // built for it, valid for the call.
        self.adapter.run_ddi(name, || unsafe { f(context, args) })
    }

    /// `DxgkDdiPresentDisplayOnly` of `dirty` rects of `surface` on `source` (`rotate`: the
    /// path is rotated and the flag says so).
    pub fn present(
        &self,
        source: u32,
        surface: &Surface,
        dirty: &[RECT],
        rotate: bool,
    ) -> NTSTATUS {
        let mut dirty = dirty.to_vec();
        // User-mode memory of this thread (the compositor's process), as in `Sim::present`.
        #[allow(clippy::expect_used)] // test support: no address space left is no scenario
        let user = user_copy(surface).expect("user-mode source surface");
        let args = present_args(
            source,
            user.address(),
            surface.pitch,
            &mut dirty,
            &mut [],
            rotate,
        );
        let status = self.call(
            "DxgkDdiPresentDisplayOnly",
            self.init.DxgkDdiPresentDisplayOnly,
            &raw const args,
        );
        check_no_locks_left(&self.adapter, "DxgkDdiPresentDisplayOnly");
        drop(user);
        status
    }

    /// `DxgkDdiSetPointerPosition`.
    pub fn set_pointer_position(&self, source: u32, x: i32, y: i32, visible: bool) -> NTSTATUS {
        let args = pointer_position_args(source, x, y, visible);
        self.call(
            "DxgkDdiSetPointerPosition",
            self.init.DxgkDdiSetPointerPosition,
            &raw const args,
        )
    }

    /// `DxgkDdiSetPointerShape`.
    pub fn set_pointer_shape(&self, source: u32, shape: &PointerShape) -> NTSTATUS {
        let args = pointer_shape_args(source, shape);
        self.call(
            "DxgkDdiSetPointerShape",
            self.init.DxgkDdiSetPointerShape,
            &raw const args,
        )
    }

    /// `DxgkDdiQueryAdapterInfo(DXGKQAITYPE_DRIVERCAPS)`.
    pub fn query_driver_caps(&self) -> NTSTATUS {
        let mut caps = DXGK_DRIVERCAPS::default();
        let args = DXGKARG_QUERYADAPTERINFO {
            Type: DXGKQAITYPE_DRIVERCAPS,
            pInputData: std::ptr::null_mut(),
            InputDataSize: 0,
            pOutputData: (&raw mut caps).cast(),
            OutputDataSize: core::mem::size_of::<DXGK_DRIVERCAPS>() as u32,
        };
        self.call(
            "DxgkDdiQueryAdapterInfo",
            self.init.DxgkDdiQueryAdapterInfo,
            &raw const args,
        )
    }

    /// A processor taking the device's pending interrupts now (ISR at DIRQL, DPC at
    /// DISPATCH_LEVEL); returns the number of driver routines run.
    pub fn take_interrupts(&self) -> usize {
        self.adapter.deliver_interrupts()
    }

    /// The bugcheck screen drawn from this thread while other threads stay where they are
    /// (frozen, as far as the driver can tell): `DxgkDdiSystemDisplayEnable` for `target`,
    /// then one `DxgkDdiSystemDisplayWrite` of `bitmap` (32 bpp, `width` x `height`) at the
    /// origin. Returns the size the driver reported, or the failing status.
    pub fn bugcheck(
        &self,
        target: u32,
        bitmap: &[u32],
        width: u32,
        height: u32,
    ) -> Result<(u32, u32), NTSTATUS> {
        let (Some(enable), Some(write)) = (
            self.init.DxgkDdiSystemDisplayEnable,
            self.init.DxgkDdiSystemDisplayWrite,
        ) else {
            return Err(STATUS_NOT_IMPLEMENTED);
        };
        let context = self.context();
        let (mut w, mut h) = (0u32, 0u32);
        let mut format = D3DDDIFMT_UNKNOWN;
        let mut flags = DXGKARG_SYSTEM_DISPLAY_ENABLE_FLAGS::default();
        // SAFETY: the driver's DDI with its context and valid out-pointers.
        let status = self
            .adapter
            .run_ddi("DxgkDdiSystemDisplayEnable", || unsafe {
                enable(context, target, &mut flags, &mut w, &mut h, &mut format)
            });
        self.adapter.check_bugcheck_target(target, status);
        if !nt_success(status) {
            return Err(status);
        }
        let source = bitmap.as_ptr().cast_mut().cast();
        // SAFETY: the bitmap holds `width * height` pixels, `width * 4` bytes per row.
        self.adapter
            .run_ddi("DxgkDdiSystemDisplayWrite", || unsafe {
                write(context, source, width, height, width * 4, 0, 0)
            });
        Ok((w, h))
    }
}

//! One display head: the host resource it shows, the guest memory behind it, and the
//! mode-change protocol.
//!
//! A mode change builds the new framebuffer completely (id, guest memory, host resource,
//! backing attached, contents transferred) and points the scanout at it *before* it takes the
//! old one down. Only then is the old resource detached and unreferenced, synchronously, and
//! its memory freed. If any step of the new mode fails, everything built so far is undone in
//! reverse order and the old mode stays on screen; nothing leaks on the guest or the host.
//!
//! The C++ driver lost the display after a large mode and then a smaller one because it reused
//! memory while an asynchronous detach was still pending, and reused a resource id at once.
//! Here the detach is waited for; if the device does not confirm it, the old framebuffer is
//! *retired*, not freed: its memory is kept until the device is reset.

use alloc::vec::Vec;

use crate::framebuffer::{AllocPolicy, FramebufferBacking};
use crate::gpu::{GpuDevice, Notify, Platform, WaitMode};
use crate::hal::Hal;
use crate::protocol::{Format, Rect};
use crate::resource_id::ResourceIdAllocator;
use crate::{Error, Result};

/// The pixel format of every framebuffer: 32-bit BGRX, what Windows' display-only desktop uses.
pub const FRAMEBUFFER_FORMAT: Format = Format::B8G8R8X8_UNORM;

/// A host resource with its guest backing.
pub struct Framebuffer<H: Hal> {
    resource_id: u32,
    backing: FramebufferBacking<H>,
}

impl<H: Hal> Framebuffer<H> {
    /// The host resource id.
    pub fn resource_id(&self) -> u32 {
        self.resource_id
    }

    /// The guest memory (CPU side).
    pub fn backing(&self) -> &FramebufferBacking<H> {
        &self.backing
    }

    /// The guest memory, writable.
    pub fn backing_mut(&mut self) -> &mut FramebufferBacking<H> {
        &mut self.backing
    }

    /// The whole framebuffer as a virtio-gpu rectangle.
    pub fn full_rect(&self) -> Rect {
        Rect {
            x: 0,
            y: 0,
            width: self.backing.width(),
            height: self.backing.height(),
        }
    }
}

/// One scanout (display head) of the device.
pub struct Scanout<H: Hal> {
    index: u32,
    policy: AllocPolicy,
    current: Option<Framebuffer<H>>,
    /// Framebuffers whose detach the device never confirmed: their memory may still be read by
    /// the host, so it is kept until the device is reset.
    retired: Vec<(Framebuffer<H>, Built)>,
}

/// A framebuffer whose teardown the device did not confirm, with the steps left to undo.
type Stuck<H> = (Framebuffer<H>, Built);

/// Which step of bringing up a framebuffer was reached, to undo exactly those.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Built {
    Nothing,
    Created,
    Attached,
}

impl<H: Hal> Scanout<H> {
    /// A scanout that shows nothing yet; its framebuffers are allocated with `policy`.
    pub const fn new(index: u32, policy: AllocPolicy) -> Self {
        Self {
            index,
            policy,
            current: None,
            retired: Vec::new(),
        }
    }

    /// The scanout index on the device.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// The framebuffer on screen, if any.
    pub fn current(&self) -> Option<&Framebuffer<H>> {
        self.current.as_ref()
    }

    /// The framebuffer on screen, writable.
    pub fn current_mut(&mut self) -> Option<&mut Framebuffer<H>> {
        self.current.as_mut()
    }

    /// The mode on screen.
    pub fn mode(&self) -> Option<(u32, u32)> {
        self.current
            .as_ref()
            .map(|fb| (fb.backing.width(), fb.backing.height()))
    }

    /// Framebuffers kept because the device did not confirm their detach.
    pub fn retired_count(&self) -> usize {
        self.retired.len()
    }

    /// Switches to a `width` x `height` framebuffer filled with `fill` (BGRX). On error the
    /// previous mode is still displayed and nothing was leaked.
    pub fn set_mode<P: Platform, N: Notify>(
        &mut self,
        gpu: &GpuDevice<H, P, N>,
        ids: &mut ResourceIdAllocator,
        width: u32,
        height: u32,
        fill: u32,
    ) -> Result<()> {
        self.reap_retired(gpu, ids);
        let fb = match build_framebuffer(gpu, ids, width, height, &self.policy, |b| b.fill(fill)) {
            Ok(fb) => fb,
            Err((e, stuck)) => {
                self.retired.extend(stuck);
                return Err(e);
            }
        };
        self.show(gpu, ids, fb)
    }

    /// Replaces the framebuffer on screen by a copy of it allocated with `policy` (same size,
    /// same picture), e.g. one physically contiguous block for a reader that only knows its
    /// first byte's address. The scanout's own policy stays as it is. On error the previous
    /// framebuffer is still displayed and nothing was leaked; [`Error::InvalidArgument`] when
    /// nothing is on screen (no framebuffer, or one suspended across a reset).
    pub fn reallocate<P: Platform, N: Notify>(
        &mut self,
        gpu: &GpuDevice<H, P, N>,
        ids: &mut ResourceIdAllocator,
        policy: &AllocPolicy,
    ) -> Result<()> {
        self.reap_retired(gpu, ids);
        let old = self
            .current
            .as_ref()
            .filter(|fb| fb.resource_id != 0)
            .ok_or(Error::InvalidArgument)?;
        let (width, height) = (old.backing.width(), old.backing.height());
        let copy = |b: &mut FramebufferBacking<H>| b.copy_rows_from(&old.backing);
        let fb = match build_framebuffer(gpu, ids, width, height, policy, copy) {
            Ok(fb) => fb,
            Err((e, stuck)) => {
                self.retired.extend(stuck);
                return Err(e);
            }
        };
        self.show(gpu, ids, fb)
    }

    /// Points the scanout at the complete framebuffer `fb`, then takes the previous one down.
    /// If the device refuses, the previous one is put back and `fb` taken down.
    fn show<P: Platform, N: Notify>(
        &mut self,
        gpu: &GpuDevice<H, P, N>,
        ids: &mut ResourceIdAllocator,
        fb: Framebuffer<H>,
    ) -> Result<()> {
        let rect = fb.full_rect();
        if let Err(e) = gpu.set_scanout(self.index, fb.resource_id, rect, WaitMode::Wait) {
            // The scanout may or may not have switched; put the old one back on screen
            // before tearing the new one down.
            if let Some(old) = &self.current {
                let _ =
                    gpu.set_scanout(self.index, old.resource_id, old.full_rect(), WaitMode::Wait);
            }
            self.teardown(gpu, ids, fb, Built::Attached);
            return Err(e);
        }
        let _ = gpu.resource_flush(fb.resource_id, rect, WaitMode::Wait);
        if let Some(old) = self.current.replace(fb) {
            self.teardown(gpu, ids, old, Built::Attached);
        }
        Ok(())
    }

    /// Turns the scanout off and frees its framebuffer.
    pub fn disable<P: Platform, N: Notify>(
        &mut self,
        gpu: &GpuDevice<H, P, N>,
        ids: &mut ResourceIdAllocator,
    ) -> Result<()> {
        let zero = Rect {
            x: 0,
            y: 0,
            width: 0,
            height: 0,
        };
        gpu.set_scanout(self.index, 0, zero, WaitMode::Wait)?;
        if let Some(old) = self.current.take() {
            self.teardown(gpu, ids, old, Built::Attached);
        }
        Ok(())
    }

    /// Tries again to take down framebuffers whose detach was not confirmed earlier (the device
    /// may have answered since). Returns how many are still retired.
    pub fn reap_retired<P: Platform, N: Notify>(
        &mut self,
        gpu: &GpuDevice<H, P, N>,
        ids: &mut ResourceIdAllocator,
    ) -> usize {
        let retired = core::mem::take(&mut self.retired);
        for (fb, built) in retired {
            self.teardown(gpu, ids, fb, built);
        }
        self.retired.len()
    }

    /// After a device reset the host has forgotten every resource and holds no memory: drop
    /// everything, including retired framebuffers, and release their ids.
    pub fn forget_after_reset(&mut self, ids: &mut ResourceIdAllocator) {
        let retired = self.retired.drain(..).map(|(fb, _)| fb);
        for fb in self.current.take().into_iter().chain(retired) {
            let _ = ids.free(fb.resource_id);
        }
    }

    /// Across a device reset that should keep the picture (a power-down): the host has
    /// forgotten every resource, so the ids are released and retired framebuffers freed, but
    /// the current framebuffer's memory is kept (its resource id becomes 0 until
    /// [`Scanout::resume_after_reset`]).
    pub fn suspend_after_reset(&mut self, ids: &mut ResourceIdAllocator) {
        for (fb, _) in self.retired.drain(..) {
            let _ = ids.free(fb.resource_id);
        }
        if let Some(fb) = self.current.as_mut() {
            if fb.resource_id != 0 {
                let _ = ids.free(fb.resource_id);
            }
            fb.resource_id = 0;
        }
    }

    /// After the device came back: a new host resource over the kept framebuffer memory,
    /// contents transferred, and the scanout pointed at it. Nothing to do without a kept
    /// framebuffer. On failure the memory is dropped (freed once the host no longer has it)
    /// and the scanout shows nothing.
    pub fn resume_after_reset<P: Platform, N: Notify>(
        &mut self,
        gpu: &GpuDevice<H, P, N>,
        ids: &mut ResourceIdAllocator,
    ) -> Result<()> {
        let Some(mut fb) = self.current.take() else {
            return Ok(());
        };
        if fb.resource_id != 0 {
            // Never suspended: still valid on the host.
            self.current = Some(fb);
            return Ok(());
        }
        let resource_id = ids.alloc()?;
        fb.resource_id = resource_id;
        let (width, height) = (fb.backing.width(), fb.backing.height());
        let mut built = Built::Nothing;
        let result = (|| {
            gpu.resource_create_2d(
                resource_id,
                FRAMEBUFFER_FORMAT,
                width,
                height,
                WaitMode::Wait,
            )?;
            built = Built::Created;
            gpu.attach_backing(resource_id, fb.backing.entries(), WaitMode::Wait)?;
            built = Built::Attached;
            let rect = fb.full_rect();
            gpu.transfer_to_host_2d(resource_id, rect, 0, WaitMode::Wait)?;
            gpu.set_scanout(self.index, resource_id, rect, WaitMode::Wait)?;
            let _ = gpu.resource_flush(resource_id, rect, WaitMode::Wait);
            Ok(())
        })();
        match result {
            Ok(()) => {
                self.current = Some(fb);
                Ok(())
            }
            Err(e) => {
                self.teardown(gpu, ids, fb, built);
                Err(e)
            }
        }
    }

    /// Takes a framebuffer down: detach (waited for), unref, free memory, free id. If the
    /// detach is not confirmed, the memory is retired instead of freed.
    fn teardown<P: Platform, N: Notify>(
        &mut self,
        gpu: &GpuDevice<H, P, N>,
        ids: &mut ResourceIdAllocator,
        fb: Framebuffer<H>,
        built: Built,
    ) {
        if let Err(stuck) = undo(gpu, ids, fb, built) {
            self.retired.push(stuck);
        }
    }
}

/// Builds a complete framebuffer: id, memory (allocated with `policy`, its pixels set by
/// `init`), host resource, attached backing, contents sent to the host. Undoes everything on
/// failure; a framebuffer whose undo could not be confirmed by the device comes back with the
/// error, to be retired rather than freed.
fn build_framebuffer<H: Hal, P: Platform, N: Notify>(
    gpu: &GpuDevice<H, P, N>,
    ids: &mut ResourceIdAllocator,
    width: u32,
    height: u32,
    policy: &AllocPolicy,
    init: impl FnOnce(&mut FramebufferBacking<H>),
) -> core::result::Result<Framebuffer<H>, (Error, Option<Stuck<H>>)> {
    let resource_id = ids.alloc().map_err(|e| (e, None))?;
    let backing = match FramebufferBacking::allocate(gpu.hal(), width, height, policy) {
        Ok(b) => b,
        Err(e) => {
            let _ = ids.free(resource_id);
            return Err((e, None));
        }
    };
    let mut fb = Framebuffer {
        resource_id,
        backing,
    };
    init(&mut fb.backing);
    let mut built = Built::Nothing;
    // A command the device did not answer may still be carried out later: only a definite
    // error answer means the step did not happen.
    let happened = |r: &Result<()>| !matches!(r, Err(Error::DeviceError(_)));
    let result = (|| {
        let r = gpu.resource_create_2d(
            resource_id,
            FRAMEBUFFER_FORMAT,
            width,
            height,
            WaitMode::Wait,
        );
        if happened(&r) {
            built = Built::Created;
        }
        r?;
        let r = gpu.attach_backing(resource_id, fb.backing.entries(), WaitMode::Wait);
        if happened(&r) {
            built = Built::Attached;
        }
        r?;
        gpu.transfer_to_host_2d(resource_id, fb.full_rect(), 0, WaitMode::Wait)
    })();
    match result {
        Ok(()) => Ok(fb),
        Err(e) => Err((e, undo(gpu, ids, fb, built).err())),
    }
}

/// Undoes the steps of `built` in reverse. Returns the framebuffer back, with what is left to
/// undo, if the device did not confirm a step (its memory may still be in use by the host).
fn undo<H: Hal, P: Platform, N: Notify>(
    gpu: &GpuDevice<H, P, N>,
    ids: &mut ResourceIdAllocator,
    fb: Framebuffer<H>,
    built: Built,
) -> core::result::Result<(), (Framebuffer<H>, Built)> {
    if built >= Built::Attached {
        match gpu.detach_backing(fb.resource_id, WaitMode::Wait) {
            // An error answer means the host has no backing for it (any more).
            Ok(()) | Err(Error::DeviceError(_)) => {}
            Err(_) => return Err((fb, Built::Attached)),
        }
    }
    if built >= Built::Created {
        match gpu.resource_unref(fb.resource_id, WaitMode::Wait) {
            Ok(()) | Err(Error::DeviceError(_)) => {}
            Err(_) => return Err((fb, Built::Created)),
        }
    }
    let _ = ids.free(fb.resource_id);
    drop(fb);
    Ok(())
}

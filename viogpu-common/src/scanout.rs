//! One display head: the host resource it shows, the guest memory behind it, and the
//! mode-change protocol.
//!
//! A mode change builds the new framebuffer completely (id, guest memory, host resource,
//! backing attached, contents transferred) and points the scanout at it *before* it takes the
//! old one down. Only then is the old resource detached and unreferenced, synchronously, and
//! its memory freed. If any step of the new mode fails, everything built so far is undone in
//! reverse order and the old mode stays on screen; nothing leaks on the guest or the host.
//!
//! A change that spans several scanouts is done in two phases so that it is all-or-nothing:
//! [`Scanout::prepare`] builds the new framebuffer of each scanout without showing it, then
//! [`Scanout::switch_to_prepared`] (or [`Scanout::switch_off`]) points each scanout at its new
//! picture while the old framebuffer is kept, so that [`Scanout::revert_switch`] can put it back
//! if a later scanout fails. Only [`Scanout::confirm_switch`] takes the old one down.
//!
//! A mode change of the VidPN (the [`Scanout::prepare`] path) sends no pixels: the OS repaints
//! the whole desktop right after it, so the new framebuffer's first picture is that present.
//! Until it arrives the host keeps showing the *outgoing* framebuffer (its resource and memory
//! stay), and the present sends the whole new framebuffer, then points the scanout at it
//! ([`Scanout::present`]), as Linux's driver does with a new framebuffer: one full transfer
//! per mode change, and never a host resource shown before it received the guest's pixels (the
//! virtio spec leaves a new resource's contents undefined). Every other way of showing the
//! framebuffer ([`Scanout::paint`], [`Scanout::reveal`]) sends it whole first too.
//!
//! **Blob framebuffers.** When the device offers `VIRTIO_GPU_F_RESOURCE_BLOB`, a framebuffer
//! is a guest-memory blob (RESOURCE_CREATE_BLOB with the backing's pages, SET_SCANOUT_BLOB
//! with its layout): the host reads the pixels in place, so nothing is ever transferred and a
//! present is the copy plus a RESOURCE_FLUSH. Its memory is allocated in whole pages per
//! chunk (hosts map a blob page by page). A blob is destroyed by its UNREF alone, never
//! detached (QEMU 7.2 keeps a stale mapping of a detached blob). Two things make one
//! framebuffer an ordinary 2D resource instead, so a blob device never loses a mode: no
//! whole-page memory, or a host that cannot map the blob (QEMU answers its creation OK and
//! refuses the SET_SCANOUT_BLOB, e.g. past udmabuf's 64 MiB), in which case the same memory is
//! re-hosted as 2D at its first showing and that size is not tried as a blob again. The
//! protocol above is the same for both kinds: only how a framebuffer is created, shown, sent
//! and destroyed differs (`create_on_host`, `show_sent`, `send_and_show`, `undo`).
//!
//! The C++ driver lost the display after a large mode and then a smaller one because it reused
//! memory while an asynchronous detach was still pending, and reused a resource id at once.
//! Here the detach is waited for; if the device does not confirm it, the old framebuffer is
//! *retired*, not freed: its memory is kept until the device is reset.

use alloc::vec::Vec;

use crate::blit::{BlitMode, Rect as BlitRect, Surface};
use crate::framebuffer::{AllocPolicy, FramebufferBacking};
use crate::gpu::{detach_confirmed, GpuDevice, Notify, Platform, WaitMode};
use crate::hal::Hal;
use crate::present::{self, MoveRect, PresentStats};
use crate::protocol::{Format, Rect, ResponseType};
use crate::resource_id::ResourceIdAllocator;
use crate::{Error, Result};

/// The pixel format of every framebuffer: 32-bit BGRX, what Windows' display-only desktop uses.
pub const FRAMEBUFFER_FORMAT: Format = Format::B8G8R8X8_UNORM;

/// The rectangle of a scanout that shows nothing.
const EMPTY_RECT: Rect = Rect {
    x: 0,
    y: 0,
    width: 0,
    height: 0,
};

/// A host resource with its guest backing.
pub struct Framebuffer<H: Hal> {
    resource_id: u32,
    backing: FramebufferBacking<H>,
    /// The host resource received the backing's pixels (at least once) and the scanout may
    /// show it; false from a VidPN mode change until the first picture.
    sent: bool,
    /// A guest-memory blob the host reads in place (module docs), not a 2D resource with a
    /// host copy.
    blob: bool,
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

    /// Whether the host resource has received the pixels (see the module docs); until then
    /// the scanout is not pointed at it.
    pub fn is_sent(&self) -> bool {
        self.sent
    }

    /// Whether the host reads this framebuffer in place (a blob resource): its pixels are
    /// never transferred, a flush is enough.
    pub fn is_blob(&self) -> bool {
        self.blob
    }

    /// What the host needs to show this framebuffer.
    pub fn shown(&self) -> ShownFramebuffer {
        ShownFramebuffer {
            resource_id: self.resource_id,
            size: (self.backing.width(), self.backing.height()),
            pitch: self.backing.pitch(),
            blob: self.blob,
        }
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
    /// A complete framebuffer built by [`Scanout::prepare`], not shown yet.
    staged: Option<Framebuffer<H>>,
    /// While a switch is not confirmed: what was on screen before it (`Some(None)`: nothing),
    /// kept so the switch can be reverted.
    previous: Option<Option<Framebuffer<H>>>,
    /// Framebuffers whose detach the device never confirmed: their memory may still be read by
    /// the host, so it is kept until the device is reset.
    retired: Vec<(Framebuffer<H>, Built)>,
    /// What the host still shows while `current` waits for its first picture (module docs).
    outgoing: Option<Framebuffer<H>>,
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
            staged: None,
            previous: None,
            retired: Vec::new(),
            outgoing: None,
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

    /// Switches to a `width` x `height` framebuffer filled with `fill` (BGRX), shown at once
    /// (its pixels sent before the scanout points at it). On error the previous mode is still
    /// displayed and nothing was leaked. The same as [`prepare`](Self::prepare),
    /// [`switch_to_prepared`](Self::switch_to_prepared) and
    /// [`confirm_switch`](Self::confirm_switch), with the pixels sent in the first step.
    pub fn set_mode<P: Platform, N: Notify>(
        &mut self,
        gpu: &GpuDevice<H, P, N>,
        ids: &mut ResourceIdAllocator,
        width: u32,
        height: u32,
        fill: u32,
    ) -> Result<()> {
        self.stage(gpu, ids, (width, height), fill, SendPixels::Now)?;
        self.switch_to_prepared(gpu, ids)?;
        self.confirm_switch(gpu, ids);
        Ok(())
    }

    /// Builds a complete `width` x `height` framebuffer filled with `fill` (BGRX) on the host
    /// without showing it: the first phase of a VidPN mode change. Its pixels are not sent:
    /// the first present after the switch does that (module docs). A framebuffer prepared
    /// earlier and not switched to is taken down first. On error nothing was leaked and
    /// nothing is staged. [`Error::InvalidArgument`] while a switch is neither confirmed nor
    /// reverted.
    pub fn prepare<P: Platform, N: Notify>(
        &mut self,
        gpu: &GpuDevice<H, P, N>,
        ids: &mut ResourceIdAllocator,
        width: u32,
        height: u32,
        fill: u32,
    ) -> Result<()> {
        self.stage(
            gpu,
            ids,
            (width, height),
            fill,
            SendPixels::WithFirstPicture,
        )
    }

    /// [`prepare`](Self::prepare), with the pixels sent now or with the first picture.
    fn stage<P: Platform, N: Notify>(
        &mut self,
        gpu: &GpuDevice<H, P, N>,
        ids: &mut ResourceIdAllocator,
        (width, height): (u32, u32),
        fill: u32,
        send: SendPixels,
    ) -> Result<()> {
        if self.previous.is_some() {
            return Err(Error::InvalidArgument);
        }
        self.discard_prepared(gpu, ids);
        self.reap_retired(gpu, ids);
        let init = |b: &mut FramebufferBacking<H>| b.fill(fill);
        match build_framebuffer(gpu, ids, (width, height), &self.policy, send, init) {
            Ok(fb) => {
                self.staged = Some(fb);
                Ok(())
            }
            Err((e, stuck)) => {
                if let Some(stuck) = stuck {
                    self.retire(stuck);
                }
                Err(e)
            }
        }
    }

    /// The size of the framebuffer [`prepare`](Self::prepare) staged, if one is.
    pub fn prepared_mode(&self) -> Option<(u32, u32)> {
        self.staged
            .as_ref()
            .map(|fb| (fb.backing.width(), fb.backing.height()))
    }

    /// Whether a switch waits for [`confirm_switch`](Self::confirm_switch) or
    /// [`revert_switch`](Self::revert_switch).
    pub fn switch_pending(&self) -> bool {
        self.previous.is_some()
    }

    /// Points the scanout at the prepared framebuffer. The framebuffer shown so far is kept
    /// until [`confirm_switch`](Self::confirm_switch) or [`revert_switch`](Self::revert_switch).
    /// If the device refuses, the previous picture is put back, the prepared framebuffer is
    /// taken down and no switch is pending. [`Error::InvalidArgument`] when nothing is
    /// prepared or a switch is already pending.
    pub fn switch_to_prepared<P: Platform, N: Notify>(
        &mut self,
        gpu: &GpuDevice<H, P, N>,
        ids: &mut ResourceIdAllocator,
    ) -> Result<()> {
        if self.previous.is_some() {
            return Err(Error::InvalidArgument);
        }
        let fb = self.staged.take().ok_or(Error::InvalidArgument)?;
        self.switch_to(gpu, ids, fb)
    }

    /// Turns the scanout off, keeping its framebuffer until
    /// [`confirm_switch`](Self::confirm_switch) or [`revert_switch`](Self::revert_switch). If
    /// the device refuses, the previous picture is put back and no switch is pending.
    /// [`Error::InvalidArgument`] while a switch is already pending.
    pub fn switch_off<P: Platform, N: Notify>(&mut self, gpu: &GpuDevice<H, P, N>) -> Result<()> {
        if self.previous.is_some() {
            return Err(Error::InvalidArgument);
        }
        if let Err(e) = gpu.set_scanout(self.index, 0, EMPTY_RECT, WaitMode::Wait) {
            // The scanout may or may not be off: show the old picture again.
            self.show_again(gpu, self.on_host());
            return Err(e);
        }
        self.previous = Some(self.current.take());
        Ok(())
    }

    /// Ends a pending switch: the framebuffer shown before it is taken down, unless the host
    /// still shows it because the new one waits for its first picture (then it is kept as the
    /// outgoing framebuffer). Nothing to do without a pending switch.
    pub fn confirm_switch<P: Platform, N: Notify>(
        &mut self,
        gpu: &GpuDevice<H, P, N>,
        ids: &mut ResourceIdAllocator,
    ) {
        let Some(old) = self.previous.take() else {
            return;
        };
        let waiting = self.current.as_ref().is_some_and(|fb| !fb.sent);
        let mut gone = [None, None];
        match old {
            // Shown by the host until the new framebuffer's first picture; one kept from an
            // earlier switch is no longer shown (the host switched to `old` since).
            Some(old) if waiting && old.sent => gone[0] = self.outgoing.replace(old),
            old if waiting => gone[0] = old,
            old => gone = [old, self.outgoing.take()],
        }
        for fb in gone.into_iter().flatten() {
            self.teardown(gpu, ids, fb, Built::Attached);
        }
    }

    /// Undoes a pending switch: the scanout is pointed at the framebuffer shown before it (or
    /// turned off if it showed nothing) and the new framebuffer is taken down. Nothing to do
    /// without a pending switch. The driver's state is restored even if the device refuses to
    /// switch back; the error is returned then.
    pub fn revert_switch<P: Platform, N: Notify>(
        &mut self,
        gpu: &GpuDevice<H, P, N>,
        ids: &mut ResourceIdAllocator,
    ) -> Result<()> {
        let Some(previous) = self.previous.take() else {
            return Ok(());
        };
        // A switch to a framebuffer that waits for its first picture sent nothing: the host
        // still shows what it showed before.
        let switched = self.current.as_ref().is_none_or(|fb| fb.sent);
        if let Some(new) = core::mem::replace(&mut self.current, previous) {
            self.teardown(gpu, ids, new, Built::Attached);
        }
        if !switched {
            return Ok(());
        }
        show_on(gpu, self.index, self.on_host(), WaitMode::Wait)
    }

    /// The framebuffer the host shows (or showed before a pending switch turned the scanout
    /// off): the current one once it received its pixels, else the outgoing one.
    fn on_host(&self) -> Option<&Framebuffer<H>> {
        match self.current.as_ref() {
            Some(fb) if fb.sent => Some(fb),
            _ => self.outgoing.as_ref(),
        }
    }

    /// Takes down the framebuffer [`prepare`](Self::prepare) staged, if any.
    pub fn discard_prepared<P: Platform, N: Notify>(
        &mut self,
        gpu: &GpuDevice<H, P, N>,
        ids: &mut ResourceIdAllocator,
    ) {
        if let Some(fb) = self.staged.take() {
            self.teardown(gpu, ids, fb, Built::Attached);
        }
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
        if self.previous.is_some() {
            return Err(Error::InvalidArgument);
        }
        self.reveal(gpu, ids)?;
        self.reap_retired(gpu, ids);
        let old = self
            .current
            .as_ref()
            .filter(|fb| fb.resource_id != 0)
            .ok_or(Error::InvalidArgument)?;
        let size = (old.backing.width(), old.backing.height());
        let copy = |b: &mut FramebufferBacking<H>| b.copy_rows_from(&old.backing);
        let fb = match build_framebuffer(gpu, ids, size, policy, SendPixels::Now, copy) {
            Ok(fb) => fb,
            Err((e, stuck)) => {
                if let Some(stuck) = stuck {
                    self.retire(stuck);
                }
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
        self.switch_to(gpu, ids, fb)?;
        self.confirm_switch(gpu, ids);
        Ok(())
    }

    /// Points the scanout at the complete framebuffer `fb` and keeps the previous one as the
    /// pending switch's. If the device refuses, the previous one is put back and `fb` taken
    /// down.
    fn switch_to<P: Platform, N: Notify>(
        &mut self,
        gpu: &GpuDevice<H, P, N>,
        ids: &mut ResourceIdAllocator,
        mut fb: Framebuffer<H>,
    ) -> Result<()> {
        // One without its pixels is pointed at by its first picture (module docs).
        if fb.sent {
            if let Err(e) = show_sent(gpu, ids, self.index, &mut fb) {
                // The scanout may or may not have switched; put the old one back on screen
                // before tearing the new one down.
                self.show_again(gpu, self.on_host());
                self.teardown(gpu, ids, fb, Built::Attached);
                return Err(e);
            }
            let _ = gpu.resource_flush(fb.resource_id, fb.full_rect(), WaitMode::Wait);
        }
        self.previous = Some(self.current.replace(fb));
        Ok(())
    }

    /// Best effort after a refused switch: points the scanout at `old` again (or turns it off
    /// if nothing was shown).
    fn show_again<P: Platform, N: Notify>(
        &self,
        gpu: &GpuDevice<H, P, N>,
        old: Option<&Framebuffer<H>>,
    ) {
        let _ = show_on(gpu, self.index, old, WaitMode::Wait);
    }

    /// Fills the current framebuffer with one `bgrx` colour and sends all of it to the host
    /// (transfer, then flush; one waiting for its first picture is shown with it), so the
    /// screen shows that colour. Nothing to do without one.
    pub fn paint<P: Platform, N: Notify>(
        &mut self,
        gpu: &GpuDevice<H, P, N>,
        ids: &mut ResourceIdAllocator,
        bgrx: u32,
    ) -> Result<()> {
        let Some(fb) = self.current.as_mut() else {
            return Ok(());
        };
        fb.backing.fill(bgrx);
        if !fb.sent {
            return self.reveal(gpu, ids);
        }
        fb.shown()
            .send_and_flush(gpu, fb.full_rect(), 0, WaitMode::Wait)
    }

    /// A present of the OS's source surface `src`: [`copy`](Self::copy), then
    /// [`send`](Self::send) of what it wrote. Nothing to do without a framebuffer with a host
    /// resource (none committed, or suspended across a power-down).
    pub fn present<P: Platform, N: Notify>(
        &mut self,
        gpu: &GpuDevice<H, P, N>,
        ids: &mut ResourceIdAllocator,
        src: &Surface<'_>,
        moves: &[MoveRect],
        dirty: &[BlitRect],
        mode: impl Into<BlitMode>,
    ) -> Result<PresentStats> {
        match self.copy(src, moves, dirty, mode)? {
            Some(written) => self.send(gpu, ids, &written),
            None => Ok(PresentStats::default()),
        }
    }

    /// The first half of a present: the moved and dirty regions of `src` copied into the
    /// current framebuffer ([`crate::present::copy_into_framebuffer`]). Returns the
    /// framebuffer rects written, or `None` when there is no framebuffer with a host resource
    /// (none committed, or suspended across a power-down). Nothing goes to the device, so a
    /// caller can run this half alone in a narrower context (the driver saves the YMM state
    /// around it, and only around it).
    pub fn copy(
        &mut self,
        src: &Surface<'_>,
        moves: &[MoveRect],
        dirty: &[BlitRect],
        mode: impl Into<BlitMode>,
    ) -> Result<Option<Vec<BlitRect>>> {
        let Some(fb) = self.current.as_mut().filter(|fb| fb.resource_id != 0) else {
            return Ok(None);
        };
        present::copy_into_framebuffer(fb.backing_mut(), src, moves, dirty, mode).map(Some)
    }

    /// The second half of a present: the regions [`copy`](Self::copy) wrote go to the host
    /// ([`crate::present::send_regions`]); for the first present after a VidPN mode change, the
    /// whole framebuffer goes, and the scanout is pointed at it ([`reveal`](Self::reveal)).
    pub fn send<P: Platform, N: Notify>(
        &mut self,
        gpu: &GpuDevice<H, P, N>,
        ids: &mut ResourceIdAllocator,
        written: &[BlitRect],
    ) -> Result<PresentStats> {
        let Some(fb) = self.current.as_mut().filter(|fb| fb.resource_id != 0) else {
            return Ok(PresentStats::default());
        };
        if fb.sent {
            return present::send_regions(gpu, fb, written, WaitMode::Wait);
        }
        self.reveal(gpu, ids)?;
        // Whole unless it is a blob (which the reveal may have re-hosted as 2D).
        let bytes = match self.current.as_ref() {
            Some(fb) if !fb.blob => fb.backing.size_bytes(),
            _ => 0,
        };
        Ok(PresentStats {
            rects: written.len(),
            transfers: usize::from(bytes != 0),
            bytes,
        })
    }

    /// Shows a current framebuffer that waits for its first picture: all of it sent to the
    /// host, the scanout pointed at it and flushed, then the outgoing framebuffer taken down.
    /// Nothing to do for one already shown. On error the host still shows the outgoing one
    /// and the next present or paint tries again.
    pub fn reveal<P: Platform, N: Notify>(
        &mut self,
        gpu: &GpuDevice<H, P, N>,
        ids: &mut ResourceIdAllocator,
    ) -> Result<()> {
        let Some(fb) = self.current.as_mut() else {
            return Ok(());
        };
        if fb.sent || fb.resource_id == 0 {
            return Ok(());
        }
        send_and_show(gpu, ids, self.index, fb)?;
        let flushed = gpu.resource_flush(fb.resource_id, fb.full_rect(), WaitMode::Wait);
        if let Some(old) = self.outgoing.take() {
            self.teardown(gpu, ids, old, Built::Attached);
        }
        flushed
    }

    /// Turns the scanout off and frees its framebuffer: [`switch_off`](Self::switch_off) and
    /// [`confirm_switch`](Self::confirm_switch).
    pub fn disable<P: Platform, N: Notify>(
        &mut self,
        gpu: &GpuDevice<H, P, N>,
        ids: &mut ResourceIdAllocator,
    ) -> Result<()> {
        self.switch_off(gpu)?;
        self.confirm_switch(gpu, ids);
        Ok(())
    }

    /// Tries again to take down framebuffers whose detach was not confirmed earlier (the device
    /// may have answered since). Returns how many are still retired.
    pub fn reap_retired<P: Platform, N: Notify>(
        &mut self,
        gpu: &GpuDevice<H, P, N>,
        ids: &mut ResourceIdAllocator,
    ) -> usize {
        // In place: the list keeps its capacity, so one that is still stuck goes back
        // without an allocation.
        let mut index = 0;
        while index < self.retired.len() {
            let (fb, built) = self.retired.swap_remove(index);
            if let Err(stuck) = undo(gpu, ids, fb, built) {
                // Room for it: one was just removed.
                #[allow(clippy::disallowed_methods)]
                self.retired.push(stuck);
                let last = self.retired.len().saturating_sub(1);
                self.retired.swap(index, last);
                index += 1;
            }
        }
        self.retired.len()
    }

    /// After a device reset the host has forgotten every resource and holds no memory: drop
    /// everything, including retired framebuffers, and release their ids.
    pub fn forget_after_reset(&mut self, ids: &mut ResourceIdAllocator) {
        self.forget_unshown(ids);
        if let Some(fb) = self.current.take() {
            if fb.resource_id != 0 {
                let _ = ids.free(fb.resource_id);
            }
        }
    }

    /// After a device reset: releases the ids of the framebuffers other than the current one
    /// (retired, prepared, kept for a pending switch, which the reset ends, or outgoing) and
    /// frees their memory.
    fn forget_unshown(&mut self, ids: &mut ResourceIdAllocator) {
        let retired = self.retired.drain(..).map(|(fb, _)| fb);
        let staged = self.staged.take();
        let previous = self.previous.take().flatten();
        let outgoing = self.outgoing.take();
        for fb in retired.chain(staged).chain(previous).chain(outgoing) {
            let _ = ids.free(fb.resource_id);
        }
    }

    /// Across a device reset that should keep the picture (a power-down): the host has
    /// forgotten every resource, so the ids are released and retired framebuffers freed, but
    /// the current framebuffer's memory is kept (its resource id becomes 0 until
    /// [`Scanout::resume_after_reset`]).
    pub fn suspend_after_reset(&mut self, ids: &mut ResourceIdAllocator) {
        self.forget_unshown(ids);
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
        fb.resource_id = ids.alloc()?;
        let mut built = Built::Nothing;
        let result = create_on_host(gpu, &fb, &mut built)
            .and_then(|()| send_and_show(gpu, ids, self.index, &mut fb));
        match result {
            Ok(()) => {
                let _ = gpu.resource_flush(fb.resource_id, fb.full_rect(), WaitMode::Wait);
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
            self.retire(stuck);
        }
    }

    /// Keeps a framebuffer the host may still use until the device answers or is reset. If
    /// the list cannot grow it is leaked instead (memory and id never freed): this runs on
    /// error paths, where an allocation failure must not abort.
    fn retire(&mut self, stuck: Stuck<H>) {
        if self.retired.try_reserve(1).is_ok() {
            #[allow(clippy::disallowed_methods)] // reserved just above
            self.retired.push(stuck);
        } else {
            core::mem::forget(stuck);
        }
    }
}

/// When a new framebuffer's pixels go to the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SendPixels {
    /// While it is built.
    Now,
    /// With its first picture (module docs).
    WithFirstPicture,
}

/// Builds a complete framebuffer: id, memory (allocated with `policy`, its pixels set by
/// `init`), host resource, attached backing, contents sent to the host as `send` says. Undoes
/// everything on failure; a framebuffer whose undo could not be confirmed by the device comes
/// back with the error, to be retired rather than freed.
fn build_framebuffer<H: Hal, P: Platform, N: Notify>(
    gpu: &GpuDevice<H, P, N>,
    ids: &mut ResourceIdAllocator,
    (width, height): (u32, u32),
    policy: &AllocPolicy,
    send: SendPixels,
    init: impl FnOnce(&mut FramebufferBacking<H>),
) -> core::result::Result<Framebuffer<H>, (Error, Option<Stuck<H>>)> {
    let resource_id = ids.alloc().map_err(|e| (e, None))?;
    let (backing, blob) = match allocate_backing(gpu, (width, height), policy) {
        Ok(allocated) => allocated,
        Err(e) => {
            let _ = ids.free(resource_id);
            return Err((e, None));
        }
    };
    let mut fb = Framebuffer {
        resource_id,
        backing,
        sent: false,
        blob,
    };
    init(&mut fb.backing);
    let mut built = Built::Nothing;
    let result = create_on_host(gpu, &fb, &mut built).and_then(|()| {
        if send == SendPixels::Now && !fb.blob {
            gpu.transfer_to_host_2d(resource_id, fb.full_rect(), 0, WaitMode::Wait)?;
        }
        Ok(())
    });
    match result {
        Ok(()) => {
            fb.sent = send == SendPixels::Now;
            Ok(fb)
        }
        Err(e) => Err((e, undo(gpu, ids, fb, built).err())),
    }
}

/// The memory of a new framebuffer, and whether it becomes a blob: on a blob device it is
/// allocated in whole pages per chunk, and if that fails (larger minimum chunks), as a 2D
/// resource's (module docs).
fn allocate_backing<H: Hal, P: Platform, N: Notify>(
    gpu: &GpuDevice<H, P, N>,
    (width, height): (u32, u32),
    policy: &AllocPolicy,
) -> Result<(FramebufferBacking<H>, bool)> {
    let bytes = u64::from(width) * u64::from(height) * 4;
    if gpu.blob_resources() && bytes < gpu.blob_refused_from() {
        let whole_pages = policy.in_whole_pages();
        if let Ok(backing) = FramebufferBacking::allocate(gpu.hal(), width, height, &whole_pages) {
            if backing.blob_entries().is_some() {
                return Ok((backing, true));
            }
        }
    }
    FramebufferBacking::allocate(gpu.hal(), width, height, policy).map(|b| (b, false))
}

/// The host resource of `fb` (its `resource_id`, its size) with `fb`'s memory attached as
/// backing: RESOURCE_CREATE_2D + ATTACH_BACKING, or for a blob RESOURCE_CREATE_BLOB, which
/// attaches the pages itself. `built` records each step that may have happened, for [`undo`]:
/// a command the device did not answer may still be carried out later, so only a definite
/// error answer means the creation did not happen; and an attach counts whatever the answer
/// (an untrusted device can attach the pages and answer an error), so the undo detaches
/// before it frees them.
fn create_on_host<H: Hal, P: Platform, N: Notify>(
    gpu: &GpuDevice<H, P, N>,
    fb: &Framebuffer<H>,
    built: &mut Built,
) -> Result<()> {
    if fb.blob {
        let (entries, size) = fb.backing.blob_entries().ok_or(Error::InvalidArgument)?;
        *built = Built::Attached;
        return gpu.resource_create_blob(fb.resource_id, entries, size, WaitMode::Wait);
    }
    let (width, height) = (fb.backing.width(), fb.backing.height());
    let r = gpu.resource_create_2d(
        fb.resource_id,
        FRAMEBUFFER_FORMAT,
        width,
        height,
        WaitMode::Wait,
    );
    if !matches!(r, Err(Error::DeviceError(_))) {
        *built = Built::Created;
    }
    r?;
    *built = Built::Attached;
    gpu.attach_backing(fb.resource_id, fb.backing.entries(), WaitMode::Wait)
}

/// Sends all of `fb` to the host, then points scanout `index` at it (in that order: the host
/// never shows a resource without the guest's pixels); `fb` counts as sent from then on. A
/// blob has nothing to send. The caller flushes.
fn send_and_show<H: Hal, P: Platform, N: Notify>(
    gpu: &GpuDevice<H, P, N>,
    ids: &mut ResourceIdAllocator,
    index: u32,
    fb: &mut Framebuffer<H>,
) -> Result<()> {
    fb.shown().send(gpu, fb.full_rect(), 0, WaitMode::Wait)?;
    show_sent(gpu, ids, index, fb)?;
    fb.sent = true;
    Ok(())
}

/// Points scanout `index` at the whole of `fb`, or turns it off for `None`.
fn show_on<H: Hal, P: Platform, N: Notify>(
    gpu: &GpuDevice<H, P, N>,
    index: u32,
    fb: Option<&Framebuffer<H>>,
    mode: WaitMode,
) -> Result<()> {
    match fb {
        Some(fb) => fb.shown().show_on(gpu, index, mode),
        None => gpu.set_scanout(index, 0, EMPTY_RECT, mode),
    }
}

/// What the host needs to show a framebuffer: for a reader that has no [`Framebuffer`] (the
/// bugcheck screen works from a published copy of these values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShownFramebuffer {
    /// The host resource.
    pub resource_id: u32,
    /// Width and height in pixels.
    pub size: (u32, u32),
    /// Bytes per row of the guest memory.
    pub pitch: u32,
    /// A blob the host reads in place (see [`Framebuffer::is_blob`]).
    pub blob: bool,
}

impl ShownFramebuffer {
    /// The whole framebuffer as a virtio-gpu rectangle.
    pub fn full_rect(&self) -> Rect {
        Rect::new(0, 0, self.size.0, self.size.1)
    }

    /// Points scanout `index` at the whole framebuffer: SET_SCANOUT, or for a blob
    /// SET_SCANOUT_BLOB with its layout (format, size, pitch, offset 0).
    pub fn show_on<H: Hal, P: Platform, N: Notify>(
        &self,
        gpu: &GpuDevice<H, P, N>,
        index: u32,
        mode: WaitMode,
    ) -> Result<()> {
        let rect = self.full_rect();
        if self.blob {
            let layout = (FRAMEBUFFER_FORMAT, self.size, self.pitch);
            gpu.set_scanout_blob(index, self.resource_id, layout, rect, mode)
        } else {
            gpu.set_scanout(index, self.resource_id, rect, mode)
        }
    }

    /// Sends `rect` (at backing byte `offset`) to the host: a transfer, or nothing for a
    /// blob, which the host reads in place.
    pub fn send<H: Hal, P: Platform, N: Notify>(
        &self,
        gpu: &GpuDevice<H, P, N>,
        rect: Rect,
        offset: u64,
        mode: WaitMode,
    ) -> Result<()> {
        if self.blob {
            return Ok(());
        }
        gpu.transfer_to_host_2d(self.resource_id, rect, offset, mode)
    }

    /// [`send`](Self::send)s `rect` and flushes it.
    pub fn send_and_flush<H: Hal, P: Platform, N: Notify>(
        &self,
        gpu: &GpuDevice<H, P, N>,
        rect: Rect,
        offset: u64,
        mode: WaitMode,
    ) -> Result<()> {
        self.send(gpu, rect, offset, mode)?;
        gpu.resource_flush(self.resource_id, rect, mode)
    }
}

/// Whether the answer to a blob's RESOURCE_UNREF means the host no longer holds its pages:
/// OK, or no such resource. Any other error, or no answer, confirms nothing.
fn unref_confirmed(result: &Result<()>) -> bool {
    match result {
        Ok(()) => true,
        Err(Error::DeviceError(t)) => ResponseType(*t) == ResponseType::ERR_INVALID_RESOURCE_ID,
        Err(_) => false,
    }
}

/// Points scanout `index` at `fb`, whose pixels the host has (a blob, or a 2D resource they
/// were transferred to). A blob the host could not map is re-hosted as a 2D resource over the
/// same memory, sent and shown: QEMU answers RESOURCE_CREATE_BLOB with OK even when the host's
/// udmabuf refused the pages (more than its size or range limit, 64 MiB and 1024 by default)
/// and refuses only the SET_SCANOUT_BLOB. Blobs of that size or more are not tried again on
/// this device ([`GpuDevice::refuse_blobs_from`]).
fn show_sent<H: Hal, P: Platform, N: Notify>(
    gpu: &GpuDevice<H, P, N>,
    ids: &mut ResourceIdAllocator,
    index: u32,
    fb: &mut Framebuffer<H>,
) -> Result<()> {
    match show_on(gpu, index, Some(fb), WaitMode::Wait) {
        Err(Error::DeviceError(_)) if fb.blob => {
            gpu.refuse_blobs_from(fb.backing.size_bytes());
            rehost_as_2d(gpu, ids, fb)?;
            gpu.transfer_to_host_2d(fb.resource_id, fb.full_rect(), 0, WaitMode::Wait)?;
            show_on(gpu, index, Some(fb), WaitMode::Wait)
        }
        shown => shown,
    }
}

/// Replaces blob `fb`'s host resource by a 2D resource (new id) over the same memory. Once
/// the blob's UNREF is confirmed its id is released and `fb` is 2D, whatever happens next (a
/// failed creation leaves it for the caller's ordinary teardown, which tolerates every partial
/// step). Until then `fb` stays the blob it was.
fn rehost_as_2d<H: Hal, P: Platform, N: Notify>(
    gpu: &GpuDevice<H, P, N>,
    ids: &mut ResourceIdAllocator,
    fb: &mut Framebuffer<H>,
) -> Result<()> {
    let new_id = ids.alloc()?;
    let unref = gpu.resource_unref(fb.resource_id, WaitMode::Wait);
    if !unref_confirmed(&unref) {
        let _ = ids.free(new_id);
        return Err(unref.err().unwrap_or(Error::Timeout));
    }
    let _ = ids.free(fb.resource_id);
    fb.resource_id = new_id;
    fb.blob = false;
    let mut built = Built::Nothing;
    create_on_host(gpu, fb, &mut built)
}

/// Undoes the steps of `built` in reverse. Returns the framebuffer back, with what is left to
/// undo, if the device did not confirm a step (its memory may still be in use by the host).
fn undo<H: Hal, P: Platform, N: Notify>(
    gpu: &GpuDevice<H, P, N>,
    ids: &mut ResourceIdAllocator,
    fb: Framebuffer<H>,
    built: Built,
) -> core::result::Result<(), (Framebuffer<H>, Built)> {
    if fb.blob {
        // A blob is taken down by its UNREF alone: its pages are the host's until that is
        // answered. Never DETACH_BACKING a blob: QEMU 7.2 then unmaps the pages but keeps
        // pointing at them, and its display or a later UNREF touches the stale mapping.
        if built >= Built::Created
            && !unref_confirmed(&gpu.resource_unref(fb.resource_id, WaitMode::Wait))
        {
            return Err((fb, built));
        }
        let _ = ids.free(fb.resource_id);
        drop(fb);
        return Ok(());
    }
    if built >= Built::Attached
        && !detach_confirmed(&gpu.detach_backing(fb.resource_id, WaitMode::Wait))
    {
        return Err((fb, Built::Attached));
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

//! The virtio-gpu device as the driver talks to it: typed commands over the control and
//! cursor queues, in a waiting mode for normal operation and a polled mode for the bugcheck
//! screen.
//!
//! Waiting mode blocks on the platform's completion event (signalled by the interrupt path)
//! with a timeout; a request that times out is abandoned, never freed (see [`crate::command`]).
//! Polled mode spins on the used ring with a stall between checks: no interrupts, no
//! allocation, usable when the OS is dying.
//!
//! A device that breaks the ring protocol is not waited for: once a queue's used index ran
//! ahead of its requests (nothing can be consumed any more), a waiter gives up at once with
//! [`Error::BadUsedIndex`] and new requests are refused, instead of each waiting out its
//! timeout. [`GpuDevice::ring_fault`] tells the owner that the device must be reset
//! ([`GpuDevice::reset_queues`] after a confirmed reset clears it).
//!
//! Each queue's state is guarded by that queue's platform lock ([`Platform::raise`]), held only
//! around ring updates: on Windows a KSPIN_LOCK per queue, which raises IRQL to
//! DISPATCH_LEVEL, so the completion DPC can never spin on a lock held by a thread it preempted
//! on the same processor, and a present on the control queue never waits for a pointer update
//! on the cursor queue.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use alloc::vec::Vec;
use zerocopy::IntoBytes;

use crate::command::{Allocation, CommandQueue, Completions, Ticket};
use crate::hal::Hal;
use crate::protocol::{
    parse_response, CommandType, CtrlHeader, CursorPos, Format, GetEdid, MemEntry, Rect,
    ResourceAttachBacking, ResourceCreate2d, ResourceCreateBlob, ResourceDetachBacking,
    ResourceFlush, ResourceUnref, RespDisplayInfo, RespEdid, Response, ResponseType, SetScanout,
    SetScanoutBlob, TransferToHost2d, UpdateCursor,
};
use crate::{Error, Result};

/// Index of the control queue.
pub const CONTROL_QUEUE: u16 = 0;
/// Index of the cursor queue.
pub const CURSOR_QUEUE: u16 = 1;

/// Default time a waiter gives the device before it abandons a request.
pub const DEFAULT_TIMEOUT_US: u64 = 5_000_000;

/// The kernel services the device layer needs from its platform.
pub trait Platform: Send + Sync {
    /// Holds one queue's lock: on Windows the queue's KSPIN_LOCK, at DISPATCH_LEVEL.
    type RaiseGuard;
    /// Takes queue `queue`'s lock (and with it the "no preemption by the completion path"
    /// state) until the guard drops. Never nested on one thread.
    fn raise(&self, queue: u16) -> Self::RaiseGuard;
    /// A monotonic clock in microseconds.
    fn now_us(&self) -> u64;
    /// Blocks until [`Platform::signal_completion`] is called or `timeout_us` passes; may
    /// return early. Must only be called where blocking is allowed.
    fn wait_for_completion(&self, timeout_us: u64);
    /// Wakes waiters; called by the completion path.
    fn signal_completion(&self);
    /// Busy-waits about `us` microseconds (polled mode).
    fn stall_us(&self, us: u32);
}

/// Tells the device that a queue has new requests (the transport's notify register).
pub trait Notify: Send + Sync {
    /// Writes the queue's notification register.
    fn notify(&self, queue: u16);

    /// True when the device is no longer there (a surprise-removed PCI device reads
    /// all-ones): a waiter stops waiting at once instead of running out its timeout. Must be
    /// cheap and side-effect free; the default knows nothing.
    fn device_gone(&self) -> bool {
        false
    }
}

/// How a command waits for its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitMode {
    /// Block on the completion event (normal operation).
    Wait,
    /// Spin on the used ring, no allocation (bugcheck screen, high IRQL).
    Polled,
}

/// Stall between two looks at the used ring in polled mode.
const POLL_STALL_US: u32 = 10;
/// Tries of a queue lock in polled mode before the work is skipped (about 5 ms of stalls).
const POLL_LOCK_TRIES: u32 = 500;

/// When a waiter gives up. Polled mode counts stalls instead of reading the clock: during a
/// bugcheck the clock interrupt no longer advances the kernel's interrupt time.
struct Deadline {
    mode: WaitMode,
    until_us: u64,
    stalls_left: u64,
}

/// Counters of what went wrong, readable at any time (for the debugger and tests).
#[derive(Debug, Default)]
pub struct DeviceStats {
    /// Requests the device did not answer in time.
    pub timeouts: AtomicU32,
    /// Malformed used-ring entries.
    pub device_faults: AtomicU32,
    /// Error responses to fire-and-forget commands.
    pub error_responses: AtomicU32,
}

/// The two queues of a virtio-gpu device and the commands sent over them.
pub struct GpuDevice<H: Hal, P: Platform, N: Notify> {
    hal: H,
    platform: P,
    notify: N,
    control: spin::Mutex<CommandQueue<H>>,
    cursor: spin::Mutex<CommandQueue<H>>,
    timeout_us: AtomicU64,
    /// Whether `VIRTIO_GPU_F_RESOURCE_BLOB` was negotiated: framebuffers are then guest-memory
    /// blobs the host reads in place (see [`crate::scanout`]).
    blob: bool,
    /// Framebuffers of at least this many bytes are not made blobs: one that large could not
    /// be shown (the host could not map it, see [`GpuDevice::refuse_blobs_from`]).
    blob_refused_from: AtomicU64,
    /// Error counters.
    pub stats: DeviceStats,
}

impl<H: Hal, P: Platform, N: Notify> GpuDevice<H, P, N> {
    /// Builds the device layer over two command queues already set up in the transport.
    pub fn new(
        hal: H,
        platform: P,
        notify: N,
        control: CommandQueue<H>,
        cursor: CommandQueue<H>,
    ) -> Self {
        Self {
            hal,
            platform,
            notify,
            control: spin::Mutex::new(control),
            cursor: spin::Mutex::new(cursor),
            timeout_us: AtomicU64::new(DEFAULT_TIMEOUT_US),
            blob: false,
            blob_refused_from: AtomicU64::new(u64::MAX),
            stats: DeviceStats::default(),
        }
    }

    /// The same device layer, with blob resources used for framebuffers when `blob` (the
    /// device offered `VIRTIO_GPU_F_RESOURCE_BLOB` and the driver accepted it).
    pub fn with_blob(mut self, blob: bool) -> Self {
        self.blob = blob;
        self
    }

    /// Whether framebuffers are guest-memory blobs (`VIRTIO_GPU_F_RESOURCE_BLOB` negotiated).
    pub fn blob_resources(&self) -> bool {
        self.blob
    }

    /// Records that the host could not show a blob of `bytes`: blobs at least that large are
    /// not tried again (the host's limit does not change while the device lives).
    pub fn refuse_blobs_from(&self, bytes: u64) {
        self.blob_refused_from.fetch_min(bytes, Ordering::Relaxed);
    }

    /// The size from which framebuffers are made 2D resources on a blob device
    /// (`u64::MAX` until a blob was refused).
    pub fn blob_refused_from(&self) -> u64 {
        self.blob_refused_from.load(Ordering::Relaxed)
    }

    /// The DMA memory of the device.
    pub fn hal(&self) -> &H {
        &self.hal
    }

    /// The platform services.
    pub fn platform(&self) -> &P {
        &self.platform
    }

    /// The doorbell side (which also knows whether the device is gone).
    pub fn notifier(&self) -> &N {
        &self.notify
    }

    /// Changes how long waiters wait.
    pub fn set_timeout_us(&self, us: u64) {
        self.timeout_us.store(us, Ordering::Relaxed);
    }

    fn queue_lock(&self, queue: u16) -> &spin::Mutex<CommandQueue<H>> {
        if queue == CURSOR_QUEUE {
            &self.cursor
        } else {
            &self.control
        }
    }

    /// Runs `f` on a queue with the lock held (and the platform raised).
    pub fn with_queue<R>(&self, queue: u16, f: impl FnOnce(&mut CommandQueue<H>) -> R) -> R {
        let _raised = self.platform.raise(queue);
        let mut guard = self.queue_lock(queue).lock();
        f(&mut guard)
    }

    /// [`Self::with_queue`] for a mode. In polled mode (the bugcheck screen) the lock is only
    /// tried, because the holder may be a processor that will never run again: a few hundred
    /// tries with a stall between them (a running holder lets go within microseconds), then
    /// `Err(Busy)` and the caller skips the work. Polled mode runs at HIGH_LEVEL (or at least
    /// DISPATCH_LEVEL), where the completion path cannot preempt it, so it does not raise:
    /// the platform's raise may itself take a lock a frozen processor holds.
    fn with_queue_in<R>(
        &self,
        queue: u16,
        mode: WaitMode,
        f: impl FnOnce(&mut CommandQueue<H>) -> R,
    ) -> Result<R> {
        match mode {
            WaitMode::Wait => Ok(self.with_queue(queue, f)),
            WaitMode::Polled => {
                for _ in 0..POLL_LOCK_TRIES {
                    if let Some(mut guard) = self.queue_lock(queue).try_lock() {
                        return Ok(f(&mut guard));
                    }
                    self.platform.stall_us(POLL_STALL_US);
                }
                Err(Error::Busy)
            }
        }
    }

    fn account(&self, c: Completions) {
        if c.device_faults > 0 {
            self.stats
                .device_faults
                .fetch_add(c.device_faults, Ordering::Relaxed);
        }
        if c.error_responses > 0 {
            self.stats
                .error_responses
                .fetch_add(c.error_responses, Ordering::Relaxed);
        }
    }

    /// The completion path (DPC, or anything that polls): reclaims and completes everything
    /// both queues returned, then wakes waiters.
    pub fn process_completions(&self) -> Completions {
        let mut total = Completions::default();
        for q in [CONTROL_QUEUE, CURSOR_QUEUE] {
            let c = self.with_queue(q, |cq| cq.process_used());
            self.account(c);
            total.completed += c.completed;
            total.reclaimed += c.reclaimed;
            total.device_faults += c.device_faults;
            total.error_responses += c.error_responses;
        }
        if total.completed > 0 || total.reclaimed > 0 {
            self.platform.signal_completion();
        }
        total
    }

    /// The first ring-protocol break of either queue since the last reset (see
    /// [`CommandQueue::ring_fault`]): the device must be reset before it is trusted again.
    pub fn ring_fault(&self) -> Option<Error> {
        [CONTROL_QUEUE, CURSOR_QUEUE]
            .into_iter()
            .find_map(|q| self.with_queue(q, |cq| cq.ring_fault()))
    }

    /// After a device reset: every buffer comes back to the driver.
    pub fn reset_queues(&self) {
        for q in [CONTROL_QUEUE, CURSOR_QUEUE] {
            self.with_queue(q, |cq| cq.reset_after_device_reset());
        }
        self.platform.signal_completion();
    }

    fn deadline(&self, mode: WaitMode) -> Deadline {
        let timeout = self.timeout_us.load(Ordering::Relaxed);
        Deadline {
            mode,
            until_us: self.platform.now_us().saturating_add(timeout),
            stalls_left: timeout / u64::from(POLL_STALL_US),
        }
    }

    fn expired(&self, deadline: &Deadline) -> bool {
        let out_of_time = match deadline.mode {
            WaitMode::Wait => self.platform.now_us() >= deadline.until_us,
            WaitMode::Polled => deadline.stalls_left == 0,
        };
        // A removed device never answers: give up now (the request is abandoned as on a
        // timeout, and its buffer kept until the device is reset or known gone for good).
        out_of_time || self.notify.device_gone()
    }

    fn pause(&self, deadline: &mut Deadline) {
        match deadline.mode {
            WaitMode::Wait => {
                let remaining = deadline.until_us.saturating_sub(self.platform.now_us());
                self.platform.wait_for_completion(remaining.min(10_000));
            }
            WaitMode::Polled => {
                self.platform.stall_us(POLL_STALL_US);
                deadline.stalls_left = deadline.stalls_left.saturating_sub(1);
            }
        }
    }

    /// Submits a request, waiting for ring space if the ring is full (never dropping it).
    fn submit(
        &self,
        queue: u16,
        parts: &[&[u8]],
        response_len: usize,
        deadline: &mut Deadline,
        publish: bool,
    ) -> Result<crate::command::Ticket> {
        let mode = deadline.mode;
        let allocation = match mode {
            WaitMode::Wait => Allocation::Allowed,
            WaitMode::Polled => Allocation::Forbidden,
        };
        loop {
            let result = self
                .with_queue_in(queue, mode, |cq| {
                    let t = cq.submit(parts, response_len, allocation)?;
                    if publish && cq.publish() {
                        self.notify.notify(queue);
                    }
                    Ok(t)
                })
                .and_then(|r| r);
            match result {
                Err(Error::QueueFull) => {
                    // Let the device see what is queued, take back what it finished, retry.
                    let c = self.with_queue_in(queue, mode, |cq| {
                        if cq.publish() {
                            self.notify.notify(queue);
                        }
                        cq.process_used()
                    })?;
                    self.account(c);
                    if self.expired(deadline) {
                        return Err(Error::QueueFull);
                    }
                    if c.completed == 0 && c.reclaimed == 0 {
                        self.pause(deadline);
                    }
                }
                other => return other,
            }
        }
    }

    /// Sends one request and waits for its answer, which is copied into `response`.
    /// Returns the number of bytes the device wrote.
    pub fn call(
        &self,
        queue: u16,
        parts: &[&[u8]],
        response: &mut [u8],
        mode: WaitMode,
    ) -> Result<usize> {
        let mut deadline = self.deadline(mode);
        let ticket = self.submit(queue, parts, response.len(), &mut deadline, true)?;
        loop {
            let polled = self.with_queue_in(queue, mode, |cq| {
                let c = cq.process_used();
                let answer = cq.take_response(ticket, response);
                let wedged = answer.is_none() && cq.is_wedged();
                if wedged {
                    // The answer can never be consumed: its buffer stays the device's until
                    // the device is reset.
                    cq.abandon(ticket);
                }
                (c, answer, wedged)
            });
            if let Ok((c, answer, wedged)) = polled {
                self.account(c);
                if let Some(answer) = answer {
                    return answer;
                }
                if wedged {
                    return Err(Error::BadUsedIndex);
                }
            }
            if self.expired(&deadline) {
                // Abandoning needs the lock; in polled mode a lock that stays held means the
                // request simply stays posted (its buffer is the device's either way).
                let _ = self.with_queue_in(queue, mode, |cq| cq.abandon(ticket));
                self.stats.timeouts.fetch_add(1, Ordering::Relaxed);
                return Err(Error::Timeout);
            }
            self.pause(&mut deadline);
        }
    }

    /// Sends a command and parses its answer as `Resp` (type and length checked).
    pub fn command<Resp>(&self, queue: u16, parts: &[&[u8]], mode: WaitMode) -> Result<Resp>
    where
        Resp: Response + IntoBytes,
    {
        let mut resp = Resp::new_zeroed();
        let written = self.call(queue, parts, resp.as_mut_bytes(), mode)?;
        let bytes = resp.as_bytes();
        parse_response(bytes.get(..written.min(bytes.len())).unwrap_or(bytes))
    }

    fn nodata(&self, parts: &[&[u8]], mode: WaitMode) -> Result<()> {
        self.command::<CtrlHeader>(CONTROL_QUEUE, parts, mode)
            .map(|_| ())
    }

    /// Sends a batch of commands that nobody waits for (a present's transfers and flush),
    /// with one notification at the end. Their buffers are reclaimed at completion; error
    /// answers are counted in [`DeviceStats::error_responses`].
    pub fn send_batch<'a>(
        &self,
        queue: u16,
        requests: impl Iterator<Item = &'a [u8]>,
        mode: WaitMode,
    ) -> Result<()> {
        let mut deadline = self.deadline(mode);
        let response_len = core::mem::size_of::<CtrlHeader>();
        let mut result = Ok(());
        for request in requests {
            let posted = self
                .submit(queue, &[request], response_len, &mut deadline, false)
                .and_then(|ticket| self.with_queue_in(queue, mode, |cq| cq.abandon(ticket)));
            if let Err(e) = posted {
                result = Err(e);
                break;
            }
        }
        let published = self.with_queue_in(queue, mode, |cq| {
            if cq.publish() {
                self.notify.notify(queue);
            }
        });
        result.and(published)
    }

    /// Posts one request whose answer is taken later with [`Self::take_answer`] (or which is
    /// given up with [`Self::abandon`]): for the completion path (DPC), which must not wait.
    /// Uses only pool buffers and never waits for ring space (`Err(QueueFull)` instead).
    pub fn post(&self, queue: u16, parts: &[&[u8]], response_len: usize) -> Result<Ticket> {
        self.with_queue(queue, |cq| {
            let ticket = cq.submit(parts, response_len, Allocation::Forbidden)?;
            if cq.publish() {
                self.notify.notify(queue);
            }
            Ok(ticket)
        })
    }

    /// The answer of a [`Self::post`]ed request parsed as `Resp` (type and length checked);
    /// `None` while the device still has it. After a device reset the answer is an error.
    pub fn take_answer<Resp>(&self, queue: u16, ticket: Ticket) -> Option<Result<Resp>>
    where
        Resp: Response + IntoBytes,
    {
        let mut resp = Resp::new_zeroed();
        let written = self.with_queue(queue, |cq| cq.take_response(ticket, resp.as_mut_bytes()))?;
        Some(written.and_then(|written| {
            let bytes = resp.as_bytes();
            parse_response(bytes.get(..written.min(bytes.len())).unwrap_or(bytes))
        }))
    }

    /// Gives up a [`Self::post`]ed request (its buffer comes back when the device returns it).
    pub fn abandon(&self, queue: u16, ticket: Ticket) {
        self.with_queue(queue, |cq| cq.abandon(ticket));
    }

    /// Posts VIRTIO_GPU_CMD_GET_DISPLAY_INFO without waiting (see [`Self::post`]).
    pub fn post_get_display_info(&self) -> Result<Ticket> {
        let hdr = CtrlHeader::command(CommandType::GET_DISPLAY_INFO);
        self.post(
            CONTROL_QUEUE,
            &[hdr.as_bytes()],
            core::mem::size_of::<RespDisplayInfo>(),
        )
    }

    /// VIRTIO_GPU_CMD_GET_DISPLAY_INFO.
    pub fn get_display_info(&self, mode: WaitMode) -> Result<RespDisplayInfo> {
        let hdr = CtrlHeader::command(CommandType::GET_DISPLAY_INFO);
        self.command(CONTROL_QUEUE, &[hdr.as_bytes()], mode)
    }

    /// VIRTIO_GPU_CMD_GET_EDID for one scanout.
    pub fn get_edid(&self, scanout: u32, mode: WaitMode) -> Result<RespEdid> {
        let req = GetEdid::new(scanout);
        self.command(CONTROL_QUEUE, &[req.as_bytes()], mode)
    }

    /// VIRTIO_GPU_CMD_RESOURCE_CREATE_2D.
    pub fn resource_create_2d(
        &self,
        resource_id: u32,
        format: crate::protocol::Format,
        width: u32,
        height: u32,
        mode: WaitMode,
    ) -> Result<()> {
        let req = ResourceCreate2d {
            hdr: CtrlHeader::command(CommandType::RESOURCE_CREATE_2D),
            resource_id,
            format: format.0,
            width,
            height,
        };
        self.nodata(&[req.as_bytes()], mode)
    }

    /// VIRTIO_GPU_CMD_RESOURCE_UNREF.
    pub fn resource_unref(&self, resource_id: u32, mode: WaitMode) -> Result<()> {
        let req = ResourceUnref {
            hdr: CtrlHeader::command(CommandType::RESOURCE_UNREF),
            resource_id,
            padding: 0,
        };
        self.nodata(&[req.as_bytes()], mode)
    }

    /// VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING with the given (address, length) entries.
    pub fn attach_backing(
        &self,
        resource_id: u32,
        entries: impl Iterator<Item = (u64, u32)>,
        mode: WaitMode,
    ) -> Result<()> {
        let (list, nr_entries) = mem_entries(entries)?;
        let req = ResourceAttachBacking::new(resource_id, nr_entries);
        self.nodata(&[req.as_bytes(), &list], mode)
    }

    /// VIRTIO_GPU_CMD_RESOURCE_CREATE_BLOB of guest memory: a resource of `size` bytes made
    /// of the given (address, length) entries, which the host reads in place from then on
    /// (the entries are attached by the creation, and detached as any backing).
    pub fn resource_create_blob(
        &self,
        resource_id: u32,
        entries: impl Iterator<Item = (u64, u32)>,
        size: u64,
        mode: WaitMode,
    ) -> Result<()> {
        let (list, nr_entries) = mem_entries(entries)?;
        let req = ResourceCreateBlob::guest(resource_id, nr_entries, size);
        self.nodata(&[req.as_bytes(), &list], mode)
    }

    /// VIRTIO_GPU_CMD_SET_SCANOUT_BLOB: scanout `scanout_id` shows `r` of blob `resource_id`,
    /// read as a `size` picture in `format` with `stride` bytes per row from offset 0.
    pub fn set_scanout_blob(
        &self,
        scanout_id: u32,
        resource_id: u32,
        (format, size, stride): (Format, (u32, u32), u32),
        r: Rect,
        mode: WaitMode,
    ) -> Result<()> {
        let req = SetScanoutBlob::new(scanout_id, resource_id, format, size, stride, r);
        self.nodata(&[req.as_bytes()], mode)
    }

    /// VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING. When this returns Ok, the host no longer
    /// touches the backing memory; see [`detach_confirmed`] for the error answers that
    /// confirm it too.
    pub fn detach_backing(&self, resource_id: u32, mode: WaitMode) -> Result<()> {
        let req = ResourceDetachBacking {
            hdr: CtrlHeader::command(CommandType::RESOURCE_DETACH_BACKING),
            resource_id,
            padding: 0,
        };
        self.nodata(&[req.as_bytes()], mode)
    }

    /// VIRTIO_GPU_CMD_SET_SCANOUT (resource 0 disables the scanout).
    pub fn set_scanout(
        &self,
        scanout_id: u32,
        resource_id: u32,
        r: Rect,
        mode: WaitMode,
    ) -> Result<()> {
        let req = SetScanout {
            hdr: CtrlHeader::command(CommandType::SET_SCANOUT),
            r,
            scanout_id,
            resource_id,
        };
        self.nodata(&[req.as_bytes()], mode)
    }

    /// VIRTIO_GPU_CMD_TRANSFER_TO_HOST_2D, waited for.
    pub fn transfer_to_host_2d(
        &self,
        resource_id: u32,
        r: Rect,
        offset: u64,
        mode: WaitMode,
    ) -> Result<()> {
        let req = transfer_request(resource_id, r, offset);
        self.nodata(&[req.as_bytes()], mode)
    }

    /// VIRTIO_GPU_CMD_RESOURCE_FLUSH, waited for.
    pub fn resource_flush(&self, resource_id: u32, r: Rect, mode: WaitMode) -> Result<()> {
        let req = flush_request(resource_id, r);
        self.nodata(&[req.as_bytes()], mode)
    }

    /// VIRTIO_GPU_CMD_UPDATE_CURSOR (resource 0 hides the cursor), fire and forget.
    pub fn update_cursor(
        &self,
        pos: CursorPos,
        resource_id: u32,
        hot_x: u32,
        hot_y: u32,
        mode: WaitMode,
    ) -> Result<()> {
        let req = UpdateCursor {
            hdr: CtrlHeader::command(CommandType::UPDATE_CURSOR),
            pos,
            resource_id,
            hot_x,
            hot_y,
            padding: 0,
        };
        self.send_batch(CURSOR_QUEUE, core::iter::once(req.as_bytes()), mode)
    }

    /// VIRTIO_GPU_CMD_MOVE_CURSOR, fire and forget. `resource_id` is the cursor image in use:
    /// QEMU hides the cursor when a move carries resource 0.
    pub fn move_cursor(&self, pos: CursorPos, resource_id: u32, mode: WaitMode) -> Result<()> {
        let req = UpdateCursor {
            hdr: CtrlHeader::command(CommandType::MOVE_CURSOR),
            pos,
            resource_id,
            hot_x: 0,
            hot_y: 0,
            padding: 0,
        };
        self.send_batch(CURSOR_QUEUE, core::iter::once(req.as_bytes()), mode)
    }
}

/// The wire bytes of (address, length) entries as `virtio_gpu_mem_entry` items, and their
/// count (allocated fallibly: the list of a large framebuffer is kilobytes).
fn mem_entries(entries: impl Iterator<Item = (u64, u32)>) -> Result<(Vec<u8>, u32)> {
    let mut list: Vec<u8> = Vec::new();
    let mut nr_entries = 0u32;
    for (addr, length) in entries {
        let e = MemEntry::new(addr, length);
        list.try_reserve(e.as_bytes().len())
            .map_err(|_| Error::NoMemory)?;
        crate::fallible::try_extend_from_slice(&mut list, e.as_bytes())?;
        nr_entries = nr_entries.checked_add(1).ok_or(Error::InvalidArgument)?;
    }
    Ok((list, nr_entries))
}

/// A TRANSFER_TO_HOST_2D request.
pub fn transfer_request(resource_id: u32, r: Rect, offset: u64) -> TransferToHost2d {
    TransferToHost2d {
        hdr: CtrlHeader::command(CommandType::TRANSFER_TO_HOST_2D),
        r,
        offset,
        resource_id,
        padding: 0,
    }
}

/// A RESOURCE_FLUSH request.
pub fn flush_request(resource_id: u32, r: Rect) -> ResourceFlush {
    ResourceFlush {
        hdr: CtrlHeader::command(CommandType::RESOURCE_FLUSH),
        r,
        resource_id,
        padding: 0,
    }
}

/// Whether the answer to a `RESOURCE_DETACH_BACKING` means the host no longer holds the
/// backing: OK, or one of the errors QEMU answers when there is nothing to detach
/// (`ERR_INVALID_RESOURCE_ID`: no such resource; `ERR_UNSPEC`: a resource without backing).
/// Any other error (out of memory, an invalid parameter, a code no device should send) says
/// the detach did not happen, so the host may still read the pages: they must not be freed
/// before a device reset. A wait that ended without an answer confirms nothing either.
pub fn detach_confirmed(result: &Result<()>) -> bool {
    match result {
        Ok(()) => true,
        Err(Error::DeviceError(t)) => {
            let t = ResponseType(*t);
            t == ResponseType::ERR_INVALID_RESOURCE_ID || t == ResponseType::ERR_UNSPEC
        }
        Err(_) => false,
    }
}

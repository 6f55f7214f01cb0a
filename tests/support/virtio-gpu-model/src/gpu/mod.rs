//! The host side of virtio-gpu (2D, guest-memory blobs and cursor), following the rules of QEMU's
//! `hw/display/virtio-gpu.c`: it takes requests off the control and cursor queues, keeps the
//! host resources, scanouts and cursors they create, writes the responses, and lets a test
//! look at the result (pixels on each scanout, counters, logs) and inject faults.
//!
//! [`GpuBackend`] knows nothing of PCI: the register shell owns the
//! [`virtio_queue::Queue`]s and calls [`GpuBackend::process_queue`] when the driver notifies
//! one; the return value says whether to raise the queue's interrupt. Responses and used-ring
//! entries are written synchronously, inside that call.
//!
//! Submodules: `commands` (the control commands and their error rules), `resources` (host
//! images, backing, transfers), `render` (what each scanout shows), `cursor`, `edid`,
//! `faults`, and `chain` (bytes in and out of descriptor chains).

mod chain;
mod commands;
mod cursor;
mod edid;
mod faults;
mod render;
mod resources;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::Ordering;

use virtio_queue::{Queue, QueueT};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use viogpu_common::protocol::{
    CommandType, Rect, ResponseType, CONTROL_QUEUE, CURSOR_QUEUE, VIRTIO_GPU_MAX_SCANOUTS,
};

pub use cursor::{CursorState, CURSOR_SIZE};
pub use edid::{generate as generate_edid, EDID_BLOCK_LEN};
pub use faults::{Corruption, EdidFault};
pub use render::Image;
pub use resources::{ResourceInfo, UNDEFINED_PIXEL};

use chain::{write_response, Request};
use faults::{Faults, HeldCompletion};
use render::Scanout;
use resources::Resource;

/// QEMU's default `max_hostmem`: the host memory all 2D resources together may use.
pub const DEFAULT_MAX_HOSTMEM: u64 = 256 << 20;

/// The most `MemEntry` items QEMU accepts in one `RESOURCE_ATTACH_BACKING`.
pub const MAX_BACKING_ENTRIES: u32 = 16384;

/// How many records each log ([`GpuBackend::log`], [`GpuBackend::transfers`],
/// [`GpuBackend::flushes`]) keeps; older ones are dropped first.
pub const LOG_CAPACITY: usize = 4096;

/// A scanout's preferred size and connection state, as the host UI reports it in
/// `GET_DISPLAY_INFO` and `GET_EDID`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PreferredDisplay {
    /// Preferred width in pixels.
    pub width: u32,
    /// Preferred height in pixels.
    pub height: u32,
    /// Whether a display is connected.
    pub enabled: bool,
}

impl PreferredDisplay {
    /// A connected display of `width` x `height`.
    pub const fn enabled(width: u32, height: u32) -> Self {
        Self {
            width,
            height,
            enabled: true,
        }
    }

    /// A scanout with nothing connected.
    pub const DISABLED: Self = Self {
        width: 0,
        height: 0,
        enabled: false,
    };
}

/// The device's fixed configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GpuConfig {
    /// Number of scanouts, 1..=16 (other values are clamped into that range).
    pub num_scanouts: u32,
    /// Host memory limit for all resources together, in bytes.
    pub max_hostmem: u64,
    /// Preferred display per scanout; missing entries are disabled, extra ones ignored.
    pub displays: Vec<PreferredDisplay>,
    /// Whether the device offers `VIRTIO_GPU_F_EDID`. Like QEMU, the model answers
    /// `GET_EDID` either way; the flag is for the PCI shell's feature bits.
    pub edid: bool,
    /// Whether the device has `VIRTIO_GPU_F_RESOURCE_BLOB` (QEMU's `blob=true`): it then
    /// executes RESOURCE_CREATE_BLOB of guest memory and SET_SCANOUT_BLOB; without it both
    /// are refused, as QEMU does. The PCI shell must offer the feature bit to match.
    pub blob: bool,
    /// The host's udmabuf limits for blobs, as `(ranges, bytes)`: the Linux module's defaults
    /// are 1024 ranges (`list_limit`) and 64 MiB (`size_limit_mb`). A blob beyond them, or
    /// with an entry that is not whole pages, is created (QEMU answers OK, only warns) but
    /// cannot be mapped, so its SET_SCANOUT_BLOB is refused with `ERR_UNSPEC`, as QEMU does.
    pub udmabuf_limits: (usize, u64),
}

impl Default for GpuConfig {
    /// One scanout with a 1024x768 display, 256 MiB of host memory, EDID offered.
    fn default() -> Self {
        Self {
            num_scanouts: 1,
            max_hostmem: DEFAULT_MAX_HOSTMEM,
            displays: vec![PreferredDisplay::enabled(1024, 768)],
            edid: true,
            blob: false,
            udmabuf_limits: (1024, 64 << 20),
        }
    }
}

/// One request the device took off a queue, and how it answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommandRecord {
    /// The queue it came from.
    pub queue_index: u16,
    /// The header's type; `None` when the request was shorter than a header.
    pub command: Option<CommandType>,
    /// The response type written; `None` for cursor-queue requests (no response).
    pub response: Option<ResponseType>,
    /// The fence id, when the request asked for a fence.
    pub fence_id: Option<u64>,
}

/// A `TRANSFER_TO_HOST_2D` the device executed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TransferRecord {
    /// The destination resource.
    pub resource_id: u32,
    /// The rectangle copied.
    pub rect: Rect,
    /// The backing offset it was copied from.
    pub offset: u64,
}

/// A `RESOURCE_FLUSH` the device executed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlushRecord {
    /// The flushed resource.
    pub resource_id: u32,
    /// The flushed rectangle, in resource pixels.
    pub rect: Rect,
}

/// The virtio-gpu device model's command processor. See the module docs.
#[derive(Debug)]
pub struct GpuBackend {
    config: GpuConfig,
    resources: BTreeMap<u32, Resource>,
    hostmem: u64,
    scanouts: Vec<Scanout>,
    cursors: Vec<CursorState>,
    counts: BTreeMap<CommandType, u64>,
    log: VecDeque<CommandRecord>,
    transfers: VecDeque<TransferRecord>,
    flushes: VecDeque<FlushRecord>,
    faults: Faults,
    /// QEMU's `enable` of the virtio display: set by the first SET_SCANOUT of a resource,
    /// cleared by a device reset. While clear, a virtio-vga shows its VGA on scanout 0.
    virtio_display: bool,
    /// Requests made available again while the device still held them (a driver bug).
    reused_while_held: u64,
}

impl GpuBackend {
    /// A device with `config` and no resources.
    pub fn new(mut config: GpuConfig) -> Self {
        config.num_scanouts = config.num_scanouts.clamp(1, VIRTIO_GPU_MAX_SCANOUTS as u32);
        let n = config.num_scanouts as usize;
        config.displays.resize(n, PreferredDisplay::DISABLED);
        Self {
            config,
            resources: BTreeMap::new(),
            hostmem: 0,
            scanouts: vec![Scanout::default(); n],
            cursors: vec![CursorState::default(); n],
            counts: BTreeMap::new(),
            log: VecDeque::new(),
            transfers: VecDeque::new(),
            flushes: VecDeque::new(),
            faults: Faults::default(),
            virtio_display: false,
            reused_while_held: 0,
        }
    }

    /// The configuration (with `num_scanouts` clamped and `displays` sized to it).
    pub fn config(&self) -> &GpuConfig {
        &self.config
    }

    /// Number of scanouts, for the device config space.
    pub fn num_scanouts(&self) -> u32 {
        self.config.num_scanouts
    }

    /// Takes every available request off `queue` (index `queue_index`: 0 control, 1 cursor),
    /// executes it and completes it (unless completions are held). Returns whether the
    /// driver should get an interrupt for this queue (`Queue::needs_notification`, so event
    /// idx is honoured).
    ///
    /// Requests on any other queue index are completed with length 0 and not executed.
    pub fn process_queue(
        &mut self,
        queue_index: u16,
        queue: &mut Queue,
        mem: &GuestMemoryMmap<()>,
    ) -> bool {
        self.consume_queue(queue_index, queue, mem) && queue.needs_notification(mem).unwrap_or(true)
    }

    /// [`process_queue`](Self::process_queue) without the interrupt decision: returns
    /// whether anything was put into the used ring, and leaves `needs_notification` to the
    /// caller (a PCI shell that calls it itself must use this one, because each
    /// `needs_notification` call consumes virtio-queue's event-idx bookkeeping).
    pub fn consume_queue(
        &mut self,
        queue_index: u16,
        queue: &mut Queue,
        mem: &GuestMemoryMmap<()>,
    ) -> bool {
        let mut completed = false;
        // Like QEMU: with notifications suppressed, drain the ring, then re-enable them
        // (with EVENT_IDX that publishes avail_event) and drain again if the driver added more
        // in between, so no request is left without a notification.
        loop {
            let _ = queue.disable_notification(mem);
            completed |= self.drain(queue_index, queue, mem);
            if !queue.enable_notification(mem).unwrap_or(false) {
                break;
            }
        }
        completed
    }

    fn drain(&mut self, queue_index: u16, queue: &mut Queue, mem: &GuestMemoryMmap<()>) -> bool {
        let mut completed = false;
        while let Some(chain) = queue.pop_descriptor_chain(mem) {
            let indirect = indirect_table(queue, mem, chain.head_index());
            let mut request = Request::read(chain, mem);
            request.ranges.extend(indirect);
            // The driver gave the device a head, or memory, that a request the device has not
            // completed still uses.
            if self.faults.held.iter().any(|h| {
                (h.queue_index == queue_index && h.head == request.head)
                    || request.ranges.iter().any(|r| h.overlaps(r))
            }) {
                self.reused_while_held += 1;
            }
            let response = match queue_index {
                CONTROL_QUEUE => self.execute_control(mem, &request.bytes),
                CURSOR_QUEUE => {
                    self.execute_cursor(&request.bytes);
                    Vec::new()
                }
                _ => Vec::new(),
            };
            let command = request
                .bytes
                .get(..4)
                .and_then(|b| Some(CommandType(u32::from_le_bytes(b.try_into().ok()?))));
            let refused_release = faults::refused_release(command, &response);
            if self.faults.hold & (1 << queue_index.min(31)) != 0 {
                self.faults.held.push(HeldCompletion {
                    queue_index,
                    head: request.head,
                    writable: request.writable,
                    response,
                    ranges: request.ranges,
                    refused_release,
                });
                continue;
            }
            completed = true;
            self.complete(
                queue_index,
                queue,
                mem,
                (request.head, refused_release),
                &request.writable,
                response,
            );
        }
        completed
    }

    /// Writes one response and its used element, applying an armed corruption on the
    /// control queue (unless it would make a refused release look done). Every variant goes through `Queue::add_used`, so virtio-queue's
    /// used index and event-idx bookkeeping stay right even when the element lies.
    fn complete(
        &mut self,
        queue_index: u16,
        queue: &mut Queue,
        mem: &GuestMemoryMmap<()>,
        (head, refused_release): (u16, bool),
        writable: &[(GuestAddress, u32)],
        mut response: Vec<u8>,
    ) {
        let corruption = if queue_index == CONTROL_QUEUE {
            self.faults.take_corruption()
        } else {
            None
        };
        let honest = response.clone();
        if let (Some(Corruption::ResponseType(ty)), Some(first)) =
            (corruption, response.get_mut(..4))
        {
            first.copy_from_slice(&ty.to_le_bytes());
        }
        if let Some(Corruption::ResponseWord { offset, value }) = corruption {
            let at = usize::from(offset);
            if let Some(word) = response.get_mut(at..at + 4) {
                word.copy_from_slice(&value.to_le_bytes());
            }
        }
        // Never a refused release made to look done (see `faults::refused_release`).
        if refused_release && faults::response_type(&response).is_some_and(faults::looks_done) {
            response = honest;
        }
        let written = write_response(mem, writable, &response);
        // A failing add_used means the used ring is outside guest memory; the driver's
        // queue is broken and there is nobody to tell.
        match corruption {
            None | Some(Corruption::ResponseType(_)) | Some(Corruption::ResponseWord { .. }) => {
                let _ = queue.add_used(mem, head, written);
            }
            Some(Corruption::UsedLength(len)) => {
                let _ = queue.add_used(mem, head, len);
            }
            Some(Corruption::DuplicateUsed) => {
                let _ = queue.add_used(mem, head, written);
                let _ = queue.add_used(mem, head, written);
            }
            Some(Corruption::BogusUsedId) => {
                let id = u32::from(queue.size()) + 5;
                if queue.add_used(mem, head, written).is_ok() {
                    rewrite_last_used_id(queue, mem, id);
                }
            }
            Some(Corruption::WrongUsedId(id)) => {
                if queue.add_used(mem, head, written).is_ok() {
                    rewrite_last_used_id(queue, mem, u32::from(id));
                }
                // A held request the lie names was given back, as far as the driver can
                // tell: the device no longer claims it (nor completes it later).
                self.faults
                    .held
                    .retain(|h| !(h.queue_index == queue_index && h.head == id));
            }
        }
    }

    /// Completes the requests held since [`hold_completions`](Self::hold_completions) for
    /// queue `queue_index`, in the order they arrived: writes their responses and used
    /// elements now. Returns whether the driver should get an interrupt.
    pub fn release_held(
        &mut self,
        queue_index: u16,
        queue: &mut Queue,
        mem: &GuestMemoryMmap<()>,
    ) -> bool {
        self.complete_held(queue_index, queue, mem) && queue.needs_notification(mem).unwrap_or(true)
    }

    /// [`release_held`](Self::release_held) without the interrupt decision (see
    /// [`consume_queue`](Self::consume_queue)); returns whether anything was completed.
    pub fn complete_held(
        &mut self,
        queue_index: u16,
        queue: &mut Queue,
        mem: &GuestMemoryMmap<()>,
    ) -> bool {
        let (mine, others): (Vec<_>, Vec<_>) = std::mem::take(&mut self.faults.held)
            .into_iter()
            .partition(|h| h.queue_index == queue_index);
        self.faults.held = others;
        let completed = !mine.is_empty();
        for held in mine {
            self.complete(
                queue_index,
                queue,
                mem,
                (held.head, held.refused_release),
                &held.writable,
                held.response,
            );
        }
        completed
    }

    /// Device reset: forgets all resources, scanouts, cursors and held requests. The
    /// display configuration, counters, logs and armed failures/corruptions stay.
    pub fn reset(&mut self) {
        self.resources.clear();
        self.hostmem = 0;
        self.scanouts.iter_mut().for_each(Scanout::disable);
        self.cursors.fill(CursorState::default());
        self.faults.held.clear();
        self.virtio_display = false;
    }

    /// Whether the host shows the virtio scanouts (QEMU's `enable`): from the first
    /// SET_SCANOUT of a resource until the next device reset. Disabling a scanout does not
    /// clear it. While false, a virtio-vga's scanout 0 shows its VGA.
    pub fn virtio_display_active(&self) -> bool {
        self.virtio_display
    }

    /// Changes what `GET_DISPLAY_INFO` and `GET_EDID` report for `scanout` (the PCI shell
    /// raises the config-change event). Returns false for a scanout out of range.
    pub fn set_display(&mut self, scanout: u32, width: u32, height: u32, enabled: bool) -> bool {
        match self.config.displays.get_mut(scanout as usize) {
            Some(display) => {
                *display = PreferredDisplay {
                    width,
                    height,
                    enabled,
                };
                true
            }
            None => false,
        }
    }

    // --- fault injection ---

    /// Answers the next command of type `command` with `response` instead of executing it.
    pub fn fail_next(&mut self, command: CommandType, response: ResponseType) {
        self.faults.fail_nth(1, command, response);
    }

    /// Answers the `n`-th next command of type `command` (1 = the next one) with
    /// `response` instead of executing it; the ones before it run normally.
    pub fn fail_nth(&mut self, n: u32, command: CommandType, response: ResponseType) {
        self.faults.fail_nth(n, command, response);
    }

    /// While on, requests are executed but not completed: no response, no used element
    /// (the device that never answers). Turning it off does not release the held ones.
    pub fn hold_completions(&mut self, hold: bool) {
        self.faults.hold = if hold { u32::MAX } else { 0 };
    }

    /// [`hold_completions`](Self::hold_completions) for one queue only (the others keep
    /// answering): a control queue stuck in a long command while the cursor queue works.
    pub fn hold_queue_completions(&mut self, queue_index: u16, hold: bool) {
        let bit = 1u32 << queue_index.min(31);
        if hold {
            self.faults.hold |= bit;
        } else {
            self.faults.hold &= !bit;
        }
    }

    /// Number of requests executed but not completed yet.
    pub fn held_count(&self) -> usize {
        self.faults.held.len()
    }

    /// Breaks the next control-queue completion (held ones included, when released).
    /// Several calls queue up, one per completion.
    pub fn corrupt_next_response(&mut self, corruption: Corruption) {
        self.faults.corrupt(corruption);
    }

    /// Makes every `GET_EDID` answer an EDID broken as `fault` says (`None`: valid again).
    pub fn set_edid_fault(&mut self, fault: Option<EdidFault>) {
        self.faults.edid = fault;
    }

    /// Makes every `GET_EDID` answer carry `blob` (cut to 1024 bytes, its length as the size)
    /// instead of the generated EDID; `None`: the generated one again. Takes precedence over
    /// [`set_edid_fault`](Self::set_edid_fault).
    pub fn set_edid_blob(&mut self, blob: Option<Vec<u8>>) {
        self.faults.edid_blob = blob;
    }

    /// Disarms every failure and corruption, stops holding and forgets held requests.
    pub fn clear_faults(&mut self) {
        self.faults.clear();
    }

    // --- the driver's side of the contract ---

    /// True if the device still uses guest memory in `start..end`: a buffer or indirect
    /// table of a request it took and has not completed, or the backing pages attached to one
    /// of its resources. Freeing such memory is a driver bug (the device may still read or
    /// write it); after a device reset the device uses nothing.
    pub fn holds_memory(&self, start: u64, end: u64) -> bool {
        let range = start..end;
        self.faults.held.iter().any(|h| h.overlaps(&range))
            || self.resources.values().any(|r| r.backing_overlaps(&range))
    }

    /// Requests the driver made available while the device still held their head descriptor
    /// or one of their buffers (not completed yet): each one is a driver bug.
    pub fn reused_while_held(&self) -> u64 {
        self.reused_while_held
    }

    // --- inspection ---

    /// Number of resources alive.
    pub fn resource_count(&self) -> usize {
        self.resources.len()
    }

    /// Host memory used by all resources, as QEMU accounts it.
    pub fn hostmem_used(&self) -> u64 {
        self.hostmem
    }

    /// Every live resource, by id.
    pub fn resources(&self) -> Vec<ResourceInfo> {
        self.resources.values().map(Resource::info).collect()
    }

    /// One resource, if it exists.
    pub fn resource(&self, id: u32) -> Option<ResourceInfo> {
        self.resources.get(&id).map(Resource::info)
    }

    /// A resource's whole host image as transferred so far (flushed or not).
    pub fn resource_image(&self, id: u32) -> Option<Image> {
        self.resources.get(&id).map(Image::of_resource)
    }

    /// The resource shown on `scanout`, `None` when disabled or out of range.
    pub fn scanout_resource(&self, scanout: u32) -> Option<u32> {
        let s = self.scanouts.get(scanout as usize)?;
        (s.resource_id != 0).then_some(s.resource_id)
    }

    /// The rectangle of the resource `scanout` shows, `None` when disabled.
    pub fn scanout_rect(&self, scanout: u32) -> Option<Rect> {
        let s = self.scanouts.get(scanout as usize)?;
        (s.resource_id != 0).then_some(s.rect)
    }

    /// What a viewer of `scanout` sees: the shown rectangle of the resource as of the last
    /// `SET_SCANOUT` or `RESOURCE_FLUSH` touching it. `None` when disabled.
    pub fn scanout_image(&self, scanout: u32) -> Option<Image> {
        self.scanouts.get(scanout as usize)?.image()
    }

    /// One visible pixel of `scanout` (see [`scanout_image`](Self::scanout_image)).
    pub fn pixel(&self, scanout: u32, x: u32, y: u32) -> Option<u32> {
        let s = self.scanouts.get(scanout as usize)?;
        if s.resource_id == 0 || x >= s.rect.width || y >= s.rect.height {
            return None;
        }
        s.displayed
            .get(y as usize * s.rect.width as usize + x as usize)
            .copied()
    }

    /// The cursor of `scanout`, `None` out of range.
    pub fn cursor(&self, scanout: u32) -> Option<&CursorState> {
        self.cursors.get(scanout as usize)
    }

    /// How many requests of type `command` the device received (executed, failed or
    /// refused alike).
    pub fn count(&self, command: CommandType) -> u64 {
        self.counts.get(&command).copied().unwrap_or(0)
    }

    /// The most recent requests, oldest first (at most [`LOG_CAPACITY`]).
    pub fn log(&self) -> impl ExactSizeIterator<Item = &CommandRecord> {
        self.log.iter()
    }

    /// The requests of [`log`](Self::log) answered with an error (`ERR_*`).
    pub fn error_answers(&self) -> impl Iterator<Item = &CommandRecord> {
        self.log.iter().filter(|r| {
            r.response
                .is_some_and(|t| t.0 >= ResponseType::ERR_UNSPEC.0)
        })
    }

    /// The most recent successful transfers, oldest first.
    pub fn transfers(&self) -> impl ExactSizeIterator<Item = &TransferRecord> {
        self.transfers.iter()
    }

    /// The most recent successful flushes, oldest first.
    pub fn flushes(&self) -> impl ExactSizeIterator<Item = &FlushRecord> {
        self.flushes.iter()
    }

    /// Empties the command, transfer and flush logs (counters stay).
    pub fn clear_logs(&mut self) {
        self.log.clear();
        self.transfers.clear();
        self.flushes.clear();
    }
}

/// Replaces the id of the used element `add_used` just wrote (an id `add_used` itself
/// refuses). The element is already published; a driver that reads the used ring while the
/// device is inside `process_queue` could see the true id for a moment, which a driver
/// notifying synchronously (the notify write runs the device) cannot.
fn rewrite_last_used_id(queue: &Queue, mem: &GuestMemoryMmap<()>, id: u32) {
    let size = queue.size().max(1);
    let slot = u64::from(queue.next_used().wrapping_sub(1) % size);
    let elem = queue.used_ring().wrapping_add(4 + slot * 8);
    let _ = mem.store(id.to_le(), GuestAddress(elem), Ordering::Release);
}

/// The indirect descriptor table of the chain at `head`, if its head descriptor is one
/// (virtio-queue walks such a table without naming it).
fn indirect_table(
    queue: &Queue,
    mem: &GuestMemoryMmap<()>,
    head: u16,
) -> Option<std::ops::Range<u64>> {
    /// VIRTQ_DESC_F_INDIRECT.
    const INDIRECT: u16 = 4;
    let desc = queue.desc_table().checked_add(u64::from(head) * 16)?;
    let addr: u64 = mem.read_obj(GuestAddress(desc)).ok()?;
    let len: u32 = mem.read_obj(GuestAddress(desc + 8)).ok()?;
    let flags: u16 = mem.read_obj(GuestAddress(desc + 12)).ok()?;
    (flags & INDIRECT != 0).then(|| addr..addr.saturating_add(u64::from(len)))
}

/// Appends to a bounded log.
fn push_bounded<T>(log: &mut VecDeque<T>, item: T) {
    if log.len() == LOG_CAPACITY {
        log.pop_front();
    }
    log.push_back(item);
}

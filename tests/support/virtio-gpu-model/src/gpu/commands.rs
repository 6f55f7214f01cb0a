//! Executing requests: the control commands with QEMU's validation order and error codes,
//! and the cursor commands.
//!
//! Rules kept from QEMU (hw/display/virtio-gpu.c), in the order QEMU checks them:
//! - any request shorter than its structure: `ERR_UNSPEC`; unknown command: `ERR_UNSPEC`;
//! - a resource lookup fails with `ERR_INVALID_RESOURCE_ID` (id 0 never exists); commands
//!   that need backing (`TRANSFER_TO_HOST_2D`, `SET_SCANOUT`, `DETACH_BACKING`) then fail
//!   with `ERR_UNSPEC` when there is none;
//! - `RESOURCE_CREATE_2D`: id 0 or an existing id `ERR_INVALID_RESOURCE_ID`, unknown format
//!   `ERR_INVALID_PARAMETER`, `hostmem + width*height*4` not below `max_hostmem`
//!   `ERR_OUT_OF_MEMORY`;
//! - `RESOURCE_ATTACH_BACKING`: backing already attached, more than 16384 entries, an entry
//!   list shorter than announced, or an entry that is empty or not inside guest memory:
//!   `ERR_UNSPEC`; zero entries succeed but leave the resource without backing;
//! - `SET_SCANOUT`: scanout id out of range `ERR_INVALID_SCANOUT_ID`; resource 0 disables;
//!   a rectangle outside the resource or smaller than 16 pixels on a side
//!   `ERR_INVALID_PARAMETER`;
//! - `TRANSFER_TO_HOST_2D` and `RESOURCE_FLUSH`: rectangle outside the resource
//!   `ERR_INVALID_PARAMETER`;
//! - `GET_EDID`: scanout out of range `ERR_INVALID_PARAMETER`;
//! - blobs (only with [`GpuConfig::blob`](super::GpuConfig), else both commands
//!   `ERR_INVALID_PARAMETER`): `RESOURCE_CREATE_BLOB` id 0 or an existing id
//!   `ERR_INVALID_RESOURCE_ID`; anything but guest memory `ERR_INVALID_PARAMETER`; its inline
//!   entries as for an attach (`ERR_UNSPEC`). Like QEMU, a blob the host's udmabuf cannot map
//!   (an entry not whole pages, a size beyond the entries, more than the udmabuf limits) is
//!   still created with OK; its `SET_SCANOUT_BLOB` is then `ERR_UNSPEC`.
//!   `SET_SCANOUT_BLOB`: scanout and resource lookups as for `SET_SCANOUT`; a 2D resource, an
//!   unknown format, a rectangle outside the picture or under 16 pixels, or a picture
//!   (`offsets[0] + stride * (r.y + r.height - 1) + 4 * (r.x + r.width)`) past the blob
//!   `ERR_INVALID_PARAMETER`. A flush of a blob must overlap a scanout showing it
//!   (`ERR_INVALID_PARAMETER`, as QEMU) and redraws from guest memory. Stricter than QEMU,
//!   which accepts them and then misbehaves (a NULL image, a stale mapping):
//!   `TRANSFER_TO_HOST_2D`, `SET_SCANOUT`, `ATTACH_BACKING` and `DETACH_BACKING` of a blob
//!   are `ERR_INVALID_PARAMETER`, so a driver that sends them is seen;
//! - with `FLAG_FENCE` the response echoes the flag, `fence_id` and `ctx_id`.

use std::collections::BTreeMap;

use vm_memory::GuestMemoryMmap;
use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout};

use viogpu_common::protocol::{
    CommandType, CtrlHeader, DisplayOne, Format, GetEdid, MemEntry, Rect, ResourceAttachBacking,
    ResourceCreate2d, ResourceCreateBlob, ResourceDetachBacking, ResourceFlush, ResourceUnref,
    RespDisplayInfo, RespEdid, ResponseType, SetScanout, SetScanoutBlob, TransferToHost2d,
    UpdateCursor, BLOB_MEM_GUEST, CONTROL_QUEUE, CURSOR_QUEUE, VIRTIO_GPU_FLAG_FENCE,
    VIRTIO_GPU_FLAG_INFO_RING_IDX,
};

use super::render::{self, BlobPicture};
use super::resources::{entries_in_memory, rect_within, Backing, Resource, BYTES_PER_PIXEL};
use super::{
    edid, push_bounded, CommandRecord, FlushRecord, GpuBackend, TransferRecord, MAX_BACKING_ENTRIES,
};

/// QEMU refuses scanout rectangles smaller than this on either side.
const MIN_SCANOUT_SIDE: u32 = 16;

/// The preferred size QEMU's EDID generator uses when the UI gave none.
const EDID_DEFAULT_SIZE: (u32, u32) = (1280, 800);

/// The answer to a command before the header's fence fields are filled in.
enum Reply {
    /// `OK_NODATA` or an error: a bare header.
    NoData(ResponseType),
    /// A full response structure, header type already set.
    Data(Vec<u8>),
}

/// A command's outcome: the reply, or the error type to answer with.
type Outcome = Result<Reply, ResponseType>;

const OK: Outcome = Ok(Reply::NoData(ResponseType::OK_NODATA));

/// The command structure at the start of `req`; a shorter request is `ERR_UNSPEC`.
fn body<T: FromBytes + KnownLayout + Immutable>(req: &[u8]) -> Result<T, ResponseType> {
    T::read_from_prefix(req)
        .map(|(t, _)| t)
        .map_err(|_| ResponseType::ERR_UNSPEC)
}

/// QEMU's `virtio_gpu_find_check_resource`.
fn find_check(
    resources: &BTreeMap<u32, Resource>,
    id: u32,
    require_backing: bool,
) -> Result<&Resource, ResponseType> {
    let res = resources
        .get(&id)
        .ok_or(ResponseType::ERR_INVALID_RESOURCE_ID)?;
    if require_backing && res.backing.is_none() {
        return Err(ResponseType::ERR_UNSPEC);
    }
    Ok(res)
}

/// [`find_check`] for a resource about to change.
fn find_check_mut(
    resources: &mut BTreeMap<u32, Resource>,
    id: u32,
    require_backing: bool,
) -> Result<&mut Resource, ResponseType> {
    let res = resources
        .get_mut(&id)
        .ok_or(ResponseType::ERR_INVALID_RESOURCE_ID)?;
    if require_backing && res.backing.is_none() {
        return Err(ResponseType::ERR_UNSPEC);
    }
    Ok(res)
}

impl GpuBackend {
    /// Executes one control-queue request and returns the response bytes to write.
    pub(super) fn execute_control(&mut self, mem: &GuestMemoryMmap<()>, req: &[u8]) -> Vec<u8> {
        let Ok((hdr, _)) = CtrlHeader::read_from_prefix(req) else {
            self.record(CONTROL_QUEUE, None, Some(ResponseType::ERR_UNSPEC), None);
            return CtrlHeader::response(ResponseType::ERR_UNSPEC)
                .as_bytes()
                .to_vec();
        };
        let command = hdr.command_type();
        *self.counts.entry(command).or_default() += 1;
        let outcome = match self.faults.take_failure(command) {
            Some(error) => Err(error),
            None => self.dispatch(mem, command, req),
        };
        let mut bytes = match outcome {
            Ok(Reply::Data(bytes)) => bytes,
            Ok(Reply::NoData(ty)) | Err(ty) => CtrlHeader::response(ty).as_bytes().to_vec(),
        };
        let fenced = hdr.flags & VIRTIO_GPU_FLAG_FENCE != 0;
        let mut response = None;
        if let Ok((resp, _)) = CtrlHeader::mut_from_prefix(&mut bytes) {
            if fenced {
                resp.flags |= VIRTIO_GPU_FLAG_FENCE;
                resp.fence_id = hdr.fence_id;
                resp.ctx_id = hdr.ctx_id;
            }
            if hdr.flags & VIRTIO_GPU_FLAG_INFO_RING_IDX != 0 {
                resp.flags |= VIRTIO_GPU_FLAG_INFO_RING_IDX;
                resp.ring_idx = hdr.ring_idx;
            }
            response = Some(resp.response_type());
        }
        self.record(
            CONTROL_QUEUE,
            Some(command),
            response,
            fenced.then_some(hdr.fence_id),
        );
        bytes
    }

    /// Executes one cursor-queue request (there is no response to write).
    pub(super) fn execute_cursor(&mut self, req: &[u8]) {
        let command = CtrlHeader::read_from_prefix(req)
            .ok()
            .map(|(hdr, _)| hdr.command_type());
        if let Some(command) = command {
            *self.counts.entry(command).or_default() += 1;
        }
        self.record(CURSOR_QUEUE, command, None, None);
        let Ok(cmd) = body::<UpdateCursor>(req) else {
            return;
        };
        if self.faults.take_failure(cmd.hdr.command_type()).is_some() {
            return;
        }
        if let Some(cursor) = self.cursors.get_mut(cmd.pos.scanout_id as usize) {
            cursor.apply(&cmd, self.resources.get(&cmd.resource_id));
        }
    }

    fn record(
        &mut self,
        queue_index: u16,
        command: Option<CommandType>,
        response: Option<ResponseType>,
        fence_id: Option<u64>,
    ) {
        push_bounded(
            &mut self.log,
            CommandRecord {
                queue_index,
                command,
                response,
                fence_id,
            },
        );
    }

    fn dispatch(&mut self, mem: &GuestMemoryMmap<()>, command: CommandType, req: &[u8]) -> Outcome {
        match command {
            CommandType::GET_DISPLAY_INFO => self.get_display_info(),
            CommandType::GET_EDID => self.get_edid(req),
            CommandType::RESOURCE_CREATE_2D => self.resource_create_2d(req),
            CommandType::RESOURCE_UNREF => self.resource_unref(req),
            CommandType::RESOURCE_ATTACH_BACKING => self.attach_backing(mem, req),
            CommandType::RESOURCE_DETACH_BACKING => self.detach_backing(req),
            CommandType::SET_SCANOUT => self.set_scanout(req),
            CommandType::TRANSFER_TO_HOST_2D => self.transfer_to_host_2d(mem, req),
            CommandType::RESOURCE_FLUSH => self.resource_flush(mem, req),
            // QEMU without the blob feature.
            CommandType::RESOURCE_CREATE_BLOB | CommandType::SET_SCANOUT_BLOB
                if !self.config.blob =>
            {
                Err(ResponseType::ERR_INVALID_PARAMETER)
            }
            CommandType::RESOURCE_CREATE_BLOB => self.resource_create_blob(mem, req),
            CommandType::SET_SCANOUT_BLOB => self.set_scanout_blob(mem, req),
            _ => Err(ResponseType::ERR_UNSPEC),
        }
    }

    fn get_display_info(&self) -> Outcome {
        let mut info = RespDisplayInfo::new_zeroed();
        info.hdr = CtrlHeader::response(ResponseType::OK_DISPLAY_INFO);
        for (one, display) in info.pmodes.iter_mut().zip(&self.config.displays) {
            if display.enabled {
                *one = DisplayOne {
                    r: Rect::new(0, 0, display.width, display.height),
                    enabled: 1,
                    flags: 0,
                };
            }
        }
        Ok(Reply::Data(info.as_bytes().to_vec()))
    }

    fn get_edid(&self, req: &[u8]) -> Outcome {
        let get: GetEdid = body(req)?;
        let display = self
            .config
            .displays
            .get(get.scanout as usize)
            .ok_or(ResponseType::ERR_INVALID_PARAMETER)?;
        let (width, height) = if display.width == 0 || display.height == 0 {
            EDID_DEFAULT_SIZE
        } else {
            (display.width, display.height)
        };
        let generated = edid::generate(width, height);
        let mut block = match (&self.faults.edid_blob, self.faults.edid) {
            (Some(blob), _) => blob.clone(),
            (None, Some(fault)) => fault.apply(&generated),
            (None, None) => generated.to_vec(),
        };
        let mut resp = RespEdid::new_zeroed();
        block.truncate(resp.edid.len());
        resp.hdr = CtrlHeader::response(ResponseType::OK_EDID);
        resp.size = block.len() as u32;
        resp.edid[..block.len()].copy_from_slice(&block);
        Ok(Reply::Data(resp.as_bytes().to_vec()))
    }

    fn resource_create_2d(&mut self, req: &[u8]) -> Outcome {
        let c: ResourceCreate2d = body(req)?;
        if c.resource_id == 0 || self.resources.contains_key(&c.resource_id) {
            return Err(ResponseType::ERR_INVALID_RESOURCE_ID);
        }
        let format = Format(c.format);
        if format.bytes_per_pixel().is_none() {
            return Err(ResponseType::ERR_INVALID_PARAMETER);
        }
        // QEMU creates the image only while `res->hostmem + g->hostmem < max_hostmem`.
        let hostmem = u64::from(c.width)
            .checked_mul(u64::from(c.height))
            .and_then(|pixels| pixels.checked_mul(BYTES_PER_PIXEL))
            .filter(|&bytes| {
                bytes
                    .checked_add(self.hostmem)
                    .is_some_and(|total| total < self.config.max_hostmem)
            })
            .ok_or(ResponseType::ERR_OUT_OF_MEMORY)?;
        let res = Resource::new(c.resource_id, format, c.width, c.height, hostmem);
        self.resources.insert(c.resource_id, res);
        self.hostmem += hostmem;
        OK
    }

    fn resource_unref(&mut self, req: &[u8]) -> Outcome {
        let u: ResourceUnref = body(req)?;
        let res = self
            .resources
            .remove(&u.resource_id)
            .ok_or(ResponseType::ERR_INVALID_RESOURCE_ID)?;
        for scanout in &mut self.scanouts {
            if scanout.resource_id == res.id {
                scanout.disable();
            }
        }
        self.hostmem = self.hostmem.saturating_sub(res.hostmem);
        OK
    }

    fn attach_backing(&mut self, mem: &GuestMemoryMmap<()>, req: &[u8]) -> Outcome {
        let ab: ResourceAttachBacking = body(req)?;
        let res = self
            .resources
            .get_mut(&ab.resource_id)
            .ok_or(ResponseType::ERR_INVALID_RESOURCE_ID)?;
        if res.blob_size.is_some() {
            return Err(ResponseType::ERR_INVALID_PARAMETER);
        }
        if res.backing.is_some() {
            return Err(ResponseType::ERR_UNSPEC);
        }
        let header = core::mem::size_of::<ResourceAttachBacking>();
        let entries = inline_entries(mem, req, header, ab.nr_entries)?;
        // With no entries QEMU maps nothing and the resource stays without backing.
        if !entries.is_empty() {
            res.backing = Some(Backing::new(entries));
        }
        OK
    }

    fn resource_create_blob(&mut self, mem: &GuestMemoryMmap<()>, req: &[u8]) -> Outcome {
        let c: ResourceCreateBlob = body(req)?;
        if c.resource_id == 0 || self.resources.contains_key(&c.resource_id) {
            return Err(ResponseType::ERR_INVALID_RESOURCE_ID);
        }
        // No 3D: guest memory is the only kind there is.
        if c.blob_mem != BLOB_MEM_GUEST {
            return Err(ResponseType::ERR_INVALID_PARAMETER);
        }
        let header = core::mem::size_of::<ResourceCreateBlob>();
        let entries = inline_entries(mem, req, header, c.nr_entries)?;
        // The host maps a blob page by page (QEMU: one udmabuf over the entries' pages), within
        // the udmabuf module's limits; QEMU only warns when that fails.
        let page = viogpu_common::hal::PAGE_SIZE as u64;
        let (max_ranges, max_bytes) = self.config.udmabuf_limits;
        let backing = Backing::new(entries);
        let whole_pages = backing
            .entries()
            .iter()
            .all(|e| e.addr % page == 0 && u64::from(e.length) % page == 0);
        let mapped = whole_pages
            && c.size > 0
            && backing.entries().len() <= max_ranges
            && backing.len() <= max_bytes
            && c.size <= backing.len();
        let res = Resource::blob(c.resource_id, backing, c.size, mapped);
        self.resources.insert(c.resource_id, res);
        OK
    }

    fn set_scanout_blob(&mut self, mem: &GuestMemoryMmap<()>, req: &[u8]) -> Outcome {
        let ss: SetScanoutBlob = body(req)?;
        let scanout = self
            .scanouts
            .get_mut(ss.scanout_id as usize)
            .ok_or(ResponseType::ERR_INVALID_SCANOUT_ID)?;
        if ss.resource_id == 0 {
            scanout.disable();
            return OK;
        }
        let res = find_check(&self.resources, ss.resource_id, true)?;
        let blob_size = res.blob_size.ok_or(ResponseType::ERR_INVALID_PARAMETER)?;
        if !res.blob_mapped {
            return Err(ResponseType::ERR_UNSPEC);
        }
        let format = Format(ss.format);
        let r = ss.r;
        let picture_end = u64::from(ss.offsets[0])
            + u64::from(ss.strides[0]) * u64::from((r.y + r.height).saturating_sub(1))
            + BYTES_PER_PIXEL * (u64::from(r.x) + u64::from(r.width));
        if format.bytes_per_pixel().is_none()
            || !rect_within(&r, ss.width, ss.height)
            || r.width < MIN_SCANOUT_SIDE
            || r.height < MIN_SCANOUT_SIDE
            || u64::from(ss.strides[0]) < u64::from(ss.width) * BYTES_PER_PIXEL
            || picture_end > blob_size
        {
            return Err(ResponseType::ERR_INVALID_PARAMETER);
        }
        let picture = BlobPicture {
            width: ss.width,
            height: ss.height,
            stride: ss.strides[0],
            offset: u64::from(ss.offsets[0]),
        };
        scanout.show_blob(mem, res, format, picture, r);
        self.virtio_display = true;
        OK
    }

    fn detach_backing(&mut self, req: &[u8]) -> Outcome {
        let d: ResourceDetachBacking = body(req)?;
        let res = find_check_mut(&mut self.resources, d.resource_id, true)?;
        if res.blob_size.is_some() {
            return Err(ResponseType::ERR_INVALID_PARAMETER);
        }
        res.backing = None;
        OK
    }

    fn set_scanout(&mut self, req: &[u8]) -> Outcome {
        let ss: SetScanout = body(req)?;
        let scanout = self
            .scanouts
            .get_mut(ss.scanout_id as usize)
            .ok_or(ResponseType::ERR_INVALID_SCANOUT_ID)?;
        if ss.resource_id == 0 {
            scanout.disable();
            return OK;
        }
        let res = find_check(&self.resources, ss.resource_id, true)?;
        let r = ss.r;
        if res.blob_size.is_some()
            || !rect_within(&r, res.width, res.height)
            || r.width < MIN_SCANOUT_SIDE
            || r.height < MIN_SCANOUT_SIDE
        {
            return Err(ResponseType::ERR_INVALID_PARAMETER);
        }
        // QEMU keeps the display surface (and so the picture) when nothing changes.
        if scanout.resource_id != res.id || scanout.rect != r {
            scanout.show(res, r);
        }
        self.virtio_display = true;
        OK
    }

    fn transfer_to_host_2d(&mut self, mem: &GuestMemoryMmap<()>, req: &[u8]) -> Outcome {
        let t: TransferToHost2d = body(req)?;
        let res = find_check_mut(&mut self.resources, t.resource_id, true)?;
        if res.blob_size.is_some() || !res.contains(&t.r) {
            return Err(ResponseType::ERR_INVALID_PARAMETER);
        }
        res.transfer(mem, &t.r, t.offset);
        push_bounded(
            &mut self.transfers,
            TransferRecord {
                resource_id: t.resource_id,
                rect: t.r,
                offset: t.offset,
            },
        );
        OK
    }

    fn resource_flush(&mut self, mem: &GuestMemoryMmap<()>, req: &[u8]) -> Outcome {
        let f: ResourceFlush = body(req)?;
        let res = find_check(&self.resources, f.resource_id, false)?;
        // A blob has no size of its own: a flush must overlap a scanout showing it (QEMU) and
        // lie inside the picture of every one (stricter).
        let inside = match res.blob_size {
            None => res.contains(&f.r),
            Some(_) => {
                let mut showing = self
                    .scanouts
                    .iter()
                    .filter(|s| s.resource_id == res.id && s.blob_picture().is_some());
                showing
                    .clone()
                    .any(|s| render::intersect(&f.r, &s.rect).is_some())
                    && showing.all(|s| {
                        s.blob_picture()
                            .is_some_and(|p| rect_within(&f.r, p.width, p.height))
                    })
            }
        };
        if !inside {
            return Err(ResponseType::ERR_INVALID_PARAMETER);
        }
        for scanout in &mut self.scanouts {
            scanout.flush(res, &f.r);
            scanout.flush_blob(mem, res, &f.r);
        }
        push_bounded(
            &mut self.flushes,
            FlushRecord {
                resource_id: f.resource_id,
                rect: f.r,
            },
        );
        OK
    }
}

/// The `nr_entries` mem entries that follow a `header`-byte command structure, checked as QEMU
/// maps them: at most 16384, all present in the request, each non-empty and inside guest
/// memory (`ERR_UNSPEC` otherwise).
fn inline_entries(
    mem: &GuestMemoryMmap<()>,
    req: &[u8],
    header: usize,
    nr_entries: u32,
) -> Result<Vec<MemEntry>, ResponseType> {
    if nr_entries > MAX_BACKING_ENTRIES {
        return Err(ResponseType::ERR_UNSPEC);
    }
    let entry_size = core::mem::size_of::<MemEntry>();
    let table = req
        .get(header..header + nr_entries as usize * entry_size)
        .ok_or(ResponseType::ERR_UNSPEC)?;
    let entries: Vec<MemEntry> = table
        .chunks_exact(entry_size)
        .filter_map(|chunk| MemEntry::read_from_bytes(chunk).ok())
        .collect();
    if !entries_in_memory(mem, &entries) {
        return Err(ResponseType::ERR_UNSPEC);
    }
    Ok(entries)
}

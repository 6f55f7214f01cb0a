//! The few DRM/KMS ioctls of Linux's `drm_mode.h` the baseline needs, on `/dev/dri/card0`:
//! resources and connectors (to find a CRTC and a connected connector), dumb buffers
//! (created, mapped, wrapped in a framebuffer), SETCRTC, DIRTYFB with clips, RMFB.

use std::ffi::c_void;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::rc::Rc;

const DRM_IOCTL_BASE: u64 = b'd' as u64;

/// `_IOWR('d', nr, size)`.
const fn iowr(nr: u64, size: usize) -> u64 {
    (3 << 30) | ((size as u64) << 16) | (DRM_IOCTL_BASE << 8) | nr
}

#[repr(C)]
#[derive(Default)]
struct CardRes {
    fb_id_ptr: u64,
    crtc_id_ptr: u64,
    connector_id_ptr: u64,
    encoder_id_ptr: u64,
    count_fbs: u32,
    count_crtcs: u32,
    count_connectors: u32,
    count_encoders: u32,
    min_width: u32,
    max_width: u32,
    min_height: u32,
    max_height: u32,
}

/// `struct drm_mode_modeinfo`.
#[repr(C)]
#[derive(Default, Clone, Copy)]
pub struct ModeInfo {
    clock: u32,
    hdisplay: u16,
    hsync_start: u16,
    hsync_end: u16,
    htotal: u16,
    hskew: u16,
    vdisplay: u16,
    vsync_start: u16,
    vsync_end: u16,
    vtotal: u16,
    vscan: u16,
    vrefresh: u32,
    flags: u32,
    kind: u32,
    name: [u8; 32],
}

impl ModeInfo {
    /// Reduced-blanking timings for a size the connector does not list (virtio-gpu ignores
    /// timings; DRM only checks that they are ordered and that the clock is not zero).
    pub fn synthesize(width: u16, height: u16) -> Self {
        let (htotal, vtotal) = (width.saturating_add(160), height.saturating_add(30));
        let mut name = [0u8; 32];
        let text = format!("{width}x{height}");
        let len = text.len().min(31);
        name[..len].copy_from_slice(&text.as_bytes()[..len]);
        Self {
            clock: (u32::from(htotal) * u32::from(vtotal) / 1000) * 60,
            hdisplay: width,
            hsync_start: width.saturating_add(48),
            hsync_end: width.saturating_add(80),
            htotal,
            vdisplay: height,
            vsync_start: height.saturating_add(3),
            vsync_end: height.saturating_add(8),
            vtotal,
            vrefresh: 60,
            name,
            ..Self::default()
        }
    }
}

#[repr(C)]
#[derive(Default)]
struct GetConnector {
    encoders_ptr: u64,
    modes_ptr: u64,
    props_ptr: u64,
    prop_values_ptr: u64,
    count_modes: u32,
    count_props: u32,
    count_encoders: u32,
    encoder_id: u32,
    connector_id: u32,
    connector_type: u32,
    connector_type_id: u32,
    connection: u32,
    mm_width: u32,
    mm_height: u32,
    subpixel: u32,
    pad: u32,
}

#[repr(C)]
#[derive(Default)]
struct SetCrtc {
    set_connectors_ptr: u64,
    count_connectors: u32,
    crtc_id: u32,
    fb_id: u32,
    x: u32,
    y: u32,
    gamma_size: u32,
    mode_valid: u32,
    mode: ModeInfo,
}

#[repr(C)]
#[derive(Default)]
struct FbCmd {
    fb_id: u32,
    width: u32,
    height: u32,
    pitch: u32,
    bpp: u32,
    depth: u32,
    handle: u32,
}

#[repr(C)]
#[derive(Default)]
struct FbDirty {
    fb_id: u32,
    flags: u32,
    color: u32,
    num_clips: u32,
    clips_ptr: u64,
}

/// `struct drm_clip_rect`: x2/y2 exclusive.
#[repr(C)]
#[derive(Default, Clone, Copy)]
pub struct ClipRect {
    /// Left.
    pub x1: u16,
    /// Top.
    pub y1: u16,
    /// Right (exclusive).
    pub x2: u16,
    /// Bottom (exclusive).
    pub y2: u16,
}

#[repr(C)]
#[derive(Default)]
struct CreateDumb {
    height: u32,
    width: u32,
    bpp: u32,
    flags: u32,
    handle: u32,
    pitch: u32,
    size: u64,
}

#[repr(C)]
#[derive(Default)]
struct MapDumb {
    handle: u32,
    pad: u32,
    offset: u64,
}

#[repr(C)]
#[derive(Default)]
struct DestroyDumb {
    handle: u32,
}

const GETRESOURCES: u64 = iowr(0xA0, std::mem::size_of::<CardRes>());
const SETCRTC: u64 = iowr(0xA2, std::mem::size_of::<SetCrtc>());
const GETCONNECTOR: u64 = iowr(0xA7, std::mem::size_of::<GetConnector>());
const ADDFB: u64 = iowr(0xAE, std::mem::size_of::<FbCmd>());
const RMFB: u64 = iowr(0xAF, std::mem::size_of::<u32>());
const DIRTYFB: u64 = iowr(0xB1, std::mem::size_of::<FbDirty>());
const CREATE_DUMB: u64 = iowr(0xB2, std::mem::size_of::<CreateDumb>());
const MAP_DUMB: u64 = iowr(0xB3, std::mem::size_of::<MapDumb>());
const DESTROY_DUMB: u64 = iowr(0xB4, std::mem::size_of::<DestroyDumb>());

/// The DRM device, its first CRTC and its first connected connector.
pub struct Card {
    file: Rc<File>,
    /// The CRTC every mode goes to.
    pub crtc: u32,
    /// The connected connector.
    pub connector: u32,
    /// The connector's modes as the kernel reports them (from the device's EDID).
    pub modes: Vec<ModeInfo>,
}

fn ioctl<T>(file: &File, request: u64, arg: &mut T, what: &str) -> io::Result<()> {
    // SAFETY: `arg` is the exclusively borrowed argument struct whose size is encoded in
    // `request`; the kernel reads and writes only that struct and the user pointers in it,
    // which the callers set to live buffers of the sizes they announce.
    let r = unsafe { libc::ioctl(file.as_raw_fd(), request as _, arg as *mut T) };
    if r < 0 {
        let e = io::Error::last_os_error();
        Err(io::Error::new(e.kind(), format!("{what}: {e}")))
    } else {
        Ok(())
    }
}

impl Card {
    /// Opens `path` and finds the first CRTC and the first connected connector.
    pub fn open(path: &str) -> io::Result<Self> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        let mut res = CardRes::default();
        ioctl(&file, GETRESOURCES, &mut res, "GETRESOURCES (counts)")?;
        let mut crtcs = vec![0u32; res.count_crtcs as usize];
        let mut connectors = vec![0u32; res.count_connectors as usize];
        let mut res = CardRes {
            crtc_id_ptr: crtcs.as_mut_ptr() as u64,
            connector_id_ptr: connectors.as_mut_ptr() as u64,
            count_crtcs: crtcs.len() as u32,
            count_connectors: connectors.len() as u32,
            ..CardRes::default()
        };
        ioctl(&file, GETRESOURCES, &mut res, "GETRESOURCES")?;
        let crtc = *crtcs
            .first()
            .ok_or_else(|| io::Error::other("the card has no CRTC"))?;
        for &connector in &connectors {
            let mut probe = GetConnector {
                connector_id: connector,
                ..GetConnector::default()
            };
            ioctl(&file, GETCONNECTOR, &mut probe, "GETCONNECTOR (counts)")?;
            if probe.connection != 1 {
                continue;
            }
            let mut modes = vec![ModeInfo::default(); probe.count_modes as usize];
            let mut get = GetConnector {
                connector_id: connector,
                modes_ptr: modes.as_mut_ptr() as u64,
                count_modes: modes.len() as u32,
                ..GetConnector::default()
            };
            ioctl(&file, GETCONNECTOR, &mut get, "GETCONNECTOR")?;
            modes.truncate(get.count_modes as usize);
            return Ok(Self {
                file: Rc::new(file),
                crtc,
                connector,
                modes,
            });
        }
        Err(io::Error::other("no connected connector"))
    }

    /// The connector's mode of that size, else a synthesized one.
    pub fn mode(&self, width: u16, height: u16) -> ModeInfo {
        self.modes
            .iter()
            .find(|m| m.hdisplay == width && m.vdisplay == height)
            .copied()
            .unwrap_or_else(|| ModeInfo::synthesize(width, height))
    }

    /// A `width` x `height` XRGB8888 dumb buffer, mapped, with a framebuffer around it.
    pub fn framebuffer(&self, width: u32, height: u32) -> io::Result<Framebuffer> {
        let mut create = CreateDumb {
            width,
            height,
            bpp: 32,
            ..CreateDumb::default()
        };
        ioctl(&self.file, CREATE_DUMB, &mut create, "CREATE_DUMB")?;
        let mut fb = Framebuffer {
            file: Rc::clone(&self.file),
            handle: create.handle,
            fb_id: 0,
            pitch: create.pitch,
            map: std::ptr::null_mut(),
            len: create.size as usize,
        };
        let mut map = MapDumb {
            handle: fb.handle,
            ..MapDumb::default()
        };
        ioctl(&self.file, MAP_DUMB, &mut map, "MAP_DUMB")?;
        // SAFETY: maps the dumb buffer's fake offset on the DRM fd, `len` bytes as the kernel
        // sized it; the mapping is private to `fb` and unmapped in its Drop.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                fb.len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                self.file.as_raw_fd(),
                map.offset as libc::off_t,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::other(format!(
                "mmap of the dumb buffer: {}",
                io::Error::last_os_error()
            )));
        }
        fb.map = ptr.cast();
        let mut add = FbCmd {
            width,
            height,
            pitch: fb.pitch,
            bpp: 32,
            depth: 24,
            handle: fb.handle,
            ..FbCmd::default()
        };
        ioctl(&self.file, ADDFB, &mut add, "ADDFB")?;
        fb.fb_id = add.fb_id;
        Ok(fb)
    }

    /// Shows `fb` on the CRTC with `mode` (a modeset: the kernel transfers and flushes the
    /// whole framebuffer).
    pub fn set_crtc(&self, fb: &Framebuffer, mode: ModeInfo) -> io::Result<()> {
        let mut connectors = [self.connector];
        let mut set = SetCrtc {
            set_connectors_ptr: connectors.as_mut_ptr() as u64,
            count_connectors: 1,
            crtc_id: self.crtc,
            fb_id: fb.fb_id,
            mode_valid: 1,
            mode,
            ..SetCrtc::default()
        };
        ioctl(&self.file, SETCRTC, &mut set, "SETCRTC")
    }

    /// DIRTYFB: the kernel transfers and flushes the damaged area of `fb`.
    pub fn dirty(&self, fb: &Framebuffer, clips: &[ClipRect]) -> io::Result<()> {
        let mut dirty = FbDirty {
            fb_id: fb.fb_id,
            num_clips: clips.len() as u32,
            clips_ptr: clips.as_ptr() as u64,
            ..FbDirty::default()
        };
        ioctl(&self.file, DIRTYFB, &mut dirty, "DIRTYFB")
    }
}

/// A mapped dumb buffer with its framebuffer; Drop removes the framebuffer, unmaps and
/// destroys the buffer (the kernel then unreferences the host resource).
pub struct Framebuffer {
    file: Rc<File>,
    handle: u32,
    fb_id: u32,
    /// Bytes per row.
    pub pitch: u32,
    map: *mut u8,
    len: usize,
}

impl Framebuffer {
    /// The mapped pixels.
    pub fn pixels(&mut self) -> &mut [u8] {
        // SAFETY: `map` is the live mapping of `len` bytes made in `Card::framebuffer`, only
        // reachable through this exclusive borrow.
        unsafe { std::slice::from_raw_parts_mut(self.map, self.len) }
    }
}

impl Drop for Framebuffer {
    fn drop(&mut self) {
        if self.fb_id != 0 {
            let mut id = self.fb_id;
            let _ = ioctl(&self.file, RMFB, &mut id, "RMFB");
        }
        if !self.map.is_null() {
            // SAFETY: unmaps the mapping made in `Card::framebuffer`; no slice of it outlives
            // `self`.
            unsafe { libc::munmap(self.map.cast::<c_void>(), self.len) };
        }
        let mut destroy = DestroyDumb {
            handle: self.handle,
        };
        let _ = ioctl(&self.file, DESTROY_DUMB, &mut destroy, "DESTROY_DUMB");
    }
}

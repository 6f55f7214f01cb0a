//! Shared rig of the driver scenarios (`tests/driver_*.rs`): the real driver
//! (`viogpudo::entry::initialization_data()`) loaded by the dxgkrnl simulator onto a
//! [`ModelMachine`] whose device executes commands with the model's [`GpuBackend`], plus
//! what the checks need: the expected screen for a presented surface under a rotation, and
//! the device's picture.
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use dxgkrnl_sim::{ModelMachine, ModelMachineConfig, Sim, SimOptions, Surface};
use viogpu_common::transport::Features;
use viogpudo::ddi::*;
use virtio_gpu_model::gpu::{GpuBackend, GpuConfig, Image, PreferredDisplay};
use virtio_gpu_model::pci::ModelConfig;
use virtio_gpu_model::testbed::SharedBackend;
use virtio_gpu_model::EVENT_DISPLAY;

/// Every driver scenario runs on the heap the Windows build has, with its IRQL rule checked
/// (allocations above DISPATCH_LEVEL are violations, reported by the simulator).
#[global_allocator]
static HEAP: viogpudo::os::hosted::irql::IrqlCheckedAllocator =
    viogpudo::os::hosted::irql::IrqlCheckedAllocator;

fn lock(gpu: &Mutex<GpuBackend>) -> MutexGuard<'_, GpuBackend> {
    gpu.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The driver on the simulated machine, and the device's GPU side for checks.
pub struct Rig {
    /// The simulator with the driver loaded.
    pub sim: Sim<ModelMachine>,
    gpu: Arc<Mutex<GpuBackend>>,
}

impl Rig {
    /// Loads the driver on a machine with one scanout per entry of `displays` (preferred
    /// sizes; `(0, 0)`: nothing connected), nothing booted yet.
    pub fn load(displays: &[(u32, u32)]) -> Self {
        Self::load_with_registry(displays, &[])
    }

    /// [`load`](Self::load) with DWORD values in the driver's registry key.
    pub fn load_with_registry(displays: &[(u32, u32)], registry: &[(&str, u32)]) -> Self {
        Self::load_on(displays, registry, false, false)
    }

    /// [`load`](Self::load) on a machine with a real-time clock, for scenarios that call the
    /// driver from several threads (a virtual clock would let one thread's wait time out
    /// another thread's command).
    pub fn load_real_time(displays: &[(u32, u32)]) -> Self {
        Self::load_on(displays, &[], true, false)
    }

    /// [`load`](Self::load) on a machine that grants a level-triggered line interrupt
    /// instead of MSI-X messages.
    pub fn load_line(displays: &[(u32, u32)]) -> Self {
        Self::load_on(displays, &[], false, true)
    }

    /// [`load`](Self::load) of another driver (a variant of the real one's initialization
    /// data, for checks of what the simulator refuses).
    pub fn try_load_init(
        init: KMDDOD_INITIALIZATION_DATA,
        displays: &[(u32, u32)],
    ) -> Result<Self, dxgkrnl_sim::SimError> {
        Self::try_load_on(init, displays, &[], false, false, Default::default())
    }

    /// [`load`](Self::load) on an adapter where the firmware left `framebuffer` on screen
    /// (what `DxgkCbAcquirePostDisplayOwnership` answers).
    pub fn load_after_firmware(
        displays: &[(u32, u32)],
        framebuffer: DXGK_DISPLAY_INFORMATION,
    ) -> Self {
        let init = viogpudo::entry::initialization_data();
        let post = dxgkrnl_sim::PostDisplay::Framebuffer(framebuffer);
        Self::try_load_on(init, displays, &[], false, false, post).unwrap()
    }

    /// [`load`](Self::load) on QEMU's virtio-vga: a VGA (BAR 0 memory, DISPI registers)
    /// beside the virtio-gpu, shown on scanout 0 whenever the device is not in virtio mode.
    pub fn load_virtio_vga(displays: &[(u32, u32)]) -> Self {
        Self::load_on_device(ModelConfig::virtio_vga(), displays)
    }

    /// [`load`](Self::load) on a device offering `VIRTIO_GPU_F_RESOURCE_BLOB` (QEMU's
    /// `blob=true`): the driver's framebuffers are guest-memory blobs the host reads in place.
    pub fn load_blob(displays: &[(u32, u32)]) -> Self {
        Self::load_on_device(ModelConfig::default().with_blob(), displays)
    }

    /// [`load`](Self::load) on the PCI device `device`.
    fn load_on_device(device: ModelConfig, displays: &[(u32, u32)]) -> Self {
        let init = viogpudo::entry::initialization_data();
        Self::try_load_on_device(
            init,
            device,
            displays,
            &[],
            false,
            false,
            Default::default(),
        )
        .unwrap()
    }

    /// [`try_load_init`](Self::try_load_init) that must succeed.
    pub fn load_init(init: KMDDOD_INITIALIZATION_DATA, displays: &[(u32, u32)]) -> Self {
        Self::try_load_init(init, displays).unwrap()
    }

    fn load_on(
        displays: &[(u32, u32)],
        registry: &[(&str, u32)],
        real_time: bool,
        line: bool,
    ) -> Self {
        let init = viogpudo::entry::initialization_data();
        Self::try_load_on(
            init,
            displays,
            registry,
            real_time,
            line,
            Default::default(),
        )
        .unwrap()
    }

    fn try_load_on(
        init: KMDDOD_INITIALIZATION_DATA,
        displays: &[(u32, u32)],
        registry: &[(&str, u32)],
        real_time: bool,
        line: bool,
        post_display: dxgkrnl_sim::PostDisplay,
    ) -> Result<Self, dxgkrnl_sim::SimError> {
        let device = ModelConfig::default();
        Self::try_load_on_device(
            init,
            device,
            displays,
            registry,
            real_time,
            line,
            post_display,
        )
    }

    fn try_load_on_device(
        init: KMDDOD_INITIALIZATION_DATA,
        device: ModelConfig,
        displays: &[(u32, u32)],
        registry: &[(&str, u32)],
        real_time: bool,
        line: bool,
        post_display: dxgkrnl_sim::PostDisplay,
    ) -> Result<Self, dxgkrnl_sim::SimError> {
        let gpu_config = GpuConfig {
            num_scanouts: displays.len() as u32,
            displays: displays
                .iter()
                .map(|&(w, h)| match (w, h) {
                    (0, 0) => PreferredDisplay::DISABLED,
                    _ => PreferredDisplay::enabled(w, h),
                })
                .collect(),
            blob: device.device_features & Features::GPU_RESOURCE_BLOB.bits() != 0,
            ..GpuConfig::default()
        };
        let gpu = Arc::new(Mutex::new(GpuBackend::new(gpu_config)));
        let config = ModelMachineConfig {
            device: ModelConfig {
                num_scanouts: displays.len() as u32,
                ..device
            },
            real_time,
            ..ModelMachineConfig::default()
        };
        let config = if line {
            ModelMachineConfig {
                interrupts: dxgkrnl_sim::InterruptMode::Line,
                ..config
            }
        } else {
            config
        };
        let machine = ModelMachine::new(config, Box::new(SharedBackend(Arc::clone(&gpu)))).unwrap();
        let options = SimOptions {
            registry: registry.iter().map(|&(k, v)| (k.to_string(), v)).collect(),
            post_display,
        };
        let sim = Sim::load_with(init, machine, options)?;
        Ok(Self { sim, gpu })
    }

    /// [`load`](Self::load) and a full boot.
    pub fn booted(displays: &[(u32, u32)]) -> Self {
        let mut rig = Self::load(displays);
        rig.sim.boot().unwrap();
        rig
    }

    /// The device's GPU side.
    pub fn gpu(&self) -> MutexGuard<'_, GpuBackend> {
        lock(&self.gpu)
    }

    /// The device's GPU side, shareable with other threads.
    pub fn gpu_handle(&self) -> GpuHandle {
        GpuHandle {
            gpu: Arc::clone(&self.gpu),
            device: self.sim.machine().device().clone(),
        }
    }

    /// What a viewer of `scanout` sees.
    pub fn screen(&self, scanout: u32) -> Image {
        self.gpu().scanout_image(scanout).unwrap()
    }

    /// What the host shows for `scanout`, as QEMU decides it: on a virtio-vga whose device
    /// is not in virtio mode (before the first SET_SCANOUT, after a reset), scanout 0 shows
    /// the VGA; otherwise the virtio scanout. `None`: nothing shown.
    pub fn host_view(&self, scanout: u32) -> Option<Image> {
        let device = self.sim.machine().device();
        let vga = device.layout() == virtio_gpu_model::pci::BarLayout::VGA;
        if vga && scanout == 0 && !self.gpu().virtio_display_active() {
            device.vga_picture()
        } else {
            self.gpu().scanout_image(scanout)
        }
    }

    /// The host display of `scanout` changes (size, connection) and the device tells the
    /// driver with a config-change interrupt, which is delivered.
    pub fn display_change(&mut self, scanout: u32, width: u32, height: u32, enabled: bool) {
        assert!(self.gpu().set_display(scanout, width, height, enabled));
        self.sim
            .machine()
            .device()
            .raise_config_change(EVENT_DISPLAY);
        self.sim.interrupt();
    }

    /// Asserts the driver met every callback contract so far.
    pub fn assert_clean(&self) {
        assert_eq!(self.sim.errors(), Vec::<String>::new(), "callback misuse");
        assert_eq!(self.sim.unexpected_calls(), Vec::<&str>::new());
        assert_eq!(self.sim.machine().stray_accesses(), 0);
        assert_eq!(
            self.sim.machine().device_memory_freed(),
            0,
            "memory freed while the device could still use it (a ring, a request, a backing)"
        );
        assert_eq!(
            self.gpu().reused_while_held(),
            0,
            "a request made available again while the device held it"
        );
    }
}

/// The device's GPU side and PCI shell, for a test thread other than the simulator's.
#[derive(Clone)]
pub struct GpuHandle {
    gpu: Arc<Mutex<GpuBackend>>,
    device: virtio_gpu_model::VirtioGpuPci,
}

impl GpuHandle {
    /// The device's GPU side.
    pub fn gpu(&self) -> MutexGuard<'_, GpuBackend> {
        lock(&self.gpu)
    }

    /// Completes the requests of `queue` held so far (with the interrupt they deserve).
    pub fn release_held(&self, queue: u16) {
        let gpu = Arc::clone(&self.gpu);
        self.device.service_queue(queue, move |_, q, mem| {
            lock(&gpu).complete_held(queue, q, mem);
        });
    }
}

/// Where desktop pixel (x, y) of a `w` x `h` surface lands on the screen for `rotation`, and
/// the screen's size. Windows defines the path rotations counter-clockwise ("ROTATE90: the
/// rotation angle is 90 degrees counter-clockwise"): the screen holds the desktop rotated by
/// the angle.
pub fn rotate_point(
    rotation: D3DKMDT_VIDPN_PRESENT_PATH_ROTATION,
    w: u32,
    h: u32,
    x: u32,
    y: u32,
) -> (u32, u32) {
    match rotation {
        D3DKMDT_VPPR_ROTATE90 => (y, w - 1 - x),
        D3DKMDT_VPPR_ROTATE180 => (w - 1 - x, h - 1 - y),
        D3DKMDT_VPPR_ROTATE270 => (h - 1 - y, x),
        _ => (x, y),
    }
}

/// The screen size for a `w` x `h` desktop under `rotation`.
pub fn screen_size(rotation: D3DKMDT_VIDPN_PRESENT_PATH_ROTATION, w: u32, h: u32) -> (u32, u32) {
    match rotation {
        D3DKMDT_VPPR_ROTATE90 | D3DKMDT_VPPR_ROTATE270 => (h, w),
        _ => (w, h),
    }
}

/// The screen pixels (0x00RRGGBB, row-major) showing `surface` under `rotation`.
pub fn expected_screen(
    surface: &Surface,
    rotation: D3DKMDT_VIDPN_PRESENT_PATH_ROTATION,
) -> Vec<u32> {
    let (sw, sh) = screen_size(rotation, surface.width, surface.height);
    let mut screen = vec![0u32; sw as usize * sh as usize];
    for y in 0..surface.height {
        for x in 0..surface.width {
            let (px, py) = rotate_point(rotation, surface.width, surface.height, x, y);
            screen[py as usize * sw as usize + px as usize] =
                surface.pixel(x, y).unwrap() & 0x00FF_FFFF;
        }
    }
    screen
}

/// Asserts `image` shows `surface` under `rotation` (colour bits only), naming the first
/// wrong pixel.
pub fn assert_shows(
    image: &Image,
    surface: &Surface,
    rotation: D3DKMDT_VIDPN_PRESENT_PATH_ROTATION,
) {
    let (sw, sh) = screen_size(rotation, surface.width, surface.height);
    assert_eq!((image.width, image.height), (sw, sh), "screen size");
    let expected = expected_screen(surface, rotation);
    if let Some(i) = (0..expected.len()).find(|&i| image.pixels[i] & 0x00FF_FFFF != expected[i]) {
        panic!(
            "screen pixel ({}, {}) is {:#08x}, expected {:#08x}",
            i as u32 % sw,
            i as u32 / sw,
            image.pixels[i] & 0x00FF_FFFF,
            expected[i]
        );
    }
}

/// All four path rotations.
pub const ROTATIONS: [D3DKMDT_VIDPN_PRESENT_PATH_ROTATION; 4] = [
    D3DKMDT_VPPR_IDENTITY,
    D3DKMDT_VPPR_ROTATE90,
    D3DKMDT_VPPR_ROTATE180,
    D3DKMDT_VPPR_ROTATE270,
];

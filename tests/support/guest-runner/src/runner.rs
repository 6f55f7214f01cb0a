//! The command loop of the guest runner: argument parsing, the serial line protocol (see the
//! crate docs in `main.rs`) and one handler per command.

use std::fs::OpenOptions;
use std::io::{self, BufRead, BufReader, Write};
use std::process::ExitCode;

use viogpu_common::hal::RegisterAccess;
use viogpu_guest_runner::hosted::bar::{BarMapping, RegisterWindow};
use viogpu_guest_runner::hosted::dma::DevMemHal;
use viogpu_guest_runner::hosted::pci::{
    first_of, PciFunction, VirtioCapability, VirtioCfgType, VIRTIO_GPU_DEVICE_ID, VIRTIO_VENDOR_ID,
};
use viogpu_guest_runner::probe::{self, ProbeDevice};

struct Args {
    serial: String,
    dma_base: u64,
    dma_len: usize,
}

fn parse_number(s: &str) -> Option<u64> {
    match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

fn parse_args() -> Result<Args, String> {
    let mut serial = None;
    let mut dma = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--serial" => serial = args.next(),
            "--dma" => {
                let value = args.next().ok_or("--dma needs BASE:SIZE")?;
                let (base, len) = value.split_once(':').ok_or("--dma needs BASE:SIZE")?;
                let base = parse_number(base).ok_or("bad --dma base")?;
                let len = parse_number(len)
                    .and_then(|l| usize::try_from(l).ok())
                    .ok_or("bad --dma size")?;
                dma = Some((base, len));
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let serial = serial.ok_or("--serial PATH is required")?;
    let (dma_base, dma_len) = dma.ok_or("--dma BASE:SIZE is required")?;
    Ok(Args {
        serial,
        dma_base,
        dma_len,
    })
}

/// What the runner holds between commands.
struct State {
    pci: PciFunction,
    hal: DevMemHal,
    device: Option<ProbeDevice>,
}

impl State {
    fn open(args: &Args) -> io::Result<Self> {
        let pci = PciFunction::find(VIRTIO_VENDOR_ID, VIRTIO_GPU_DEVICE_ID)?;
        let hal = DevMemHal::open(args.dma_base, args.dma_len)?;
        Ok(Self {
            pci,
            hal,
            device: None,
        })
    }

    fn info(&self) -> io::Result<String> {
        let caps = self.pci.virtio_capabilities()?;
        let common = first_of(&caps, VirtioCfgType::Common)
            .ok_or_else(|| io::Error::other("no virtio common capability"))?;
        let device = first_of(&caps, VirtioCfgType::Device)
            .ok_or_else(|| io::Error::other("no virtio device capability"))?;
        let bar = self.pci.bar_resource(common.bar)?;
        self.pci.enable_memory_and_bus_master()?;
        let window = |cap: VirtioCapability| {
            RegisterWindow::new(
                BarMapping::map(&self.pci, cap.bar)?,
                cap.offset as usize,
                cap.length as usize,
            )
        };
        let common_window = window(common)?;
        let device_window = window(device)?;
        Ok(format!(
            "pci={} id={:04x}:{:04x} bar={} bar_addr={:#x} bar_len={:#x} features={:#x} scanouts={}",
            self.pci.address(),
            self.pci.vendor_id()?,
            self.pci.device_id()?,
            common.bar,
            bar.start,
            bar.len,
            probe::device_features(&common_window),
            // virtio_gpu_config: events_read, events_clear, num_scanouts, num_capsets.
            device_window.read_u32(8),
        ))
    }

    /// A freshly initialised device; any previous one is reset and its memory freed first.
    fn fresh_device(&mut self) -> io::Result<&mut ProbeDevice> {
        self.device = None;
        Ok(self.device.insert(ProbeDevice::init(&self.pci, &self.hal)?))
    }

    fn display_info(&mut self) -> io::Result<String> {
        let scanouts = self.fresh_device()?.display_info().map_err(probe::to_io)?;
        let parts: Vec<String> = scanouts
            .iter()
            .filter(|s| s.width != 0 || s.height != 0 || s.enabled)
            .map(|s| {
                let on = if s.enabled { "on" } else { "off" };
                format!("{}:{}x{}:{on}", s.id, s.width, s.height)
            })
            .collect();
        Ok(parts.join(" "))
    }

    fn demo_fill(&mut self, args: &[&str]) -> io::Result<String> {
        let rgb: Vec<u8> = args.iter().filter_map(|a| a.parse().ok()).collect();
        let [r, g, b] = rgb[..] else {
            return Err(io::Error::other("usage: demo-fill R G B (0..=255 each)"));
        };
        let (w, h) = self
            .fresh_device()?
            .fill_scanout0([r, g, b])
            .map_err(probe::to_io)?;
        Ok(format!("{w}x{h}"))
    }

    fn handle(&mut self, line: &str) -> io::Result<String> {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["ping"] => Ok("pong".into()),
            ["info"] => self.info(),
            ["display-info"] => self.display_info(),
            ["demo-fill", rest @ ..] => self.demo_fill(rest),
            ["dma-free"] => Ok(self.hal.free_bytes().to_string()),
            _ => Err(io::Error::other(format!("unknown command {line:?}"))),
        }
    }
}

fn one_line(s: &str) -> String {
    s.replace(['\r', '\n'], " ")
}

pub fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("viogpu-guest-runner: {e}");
            return ExitCode::from(2);
        }
    };
    let port = match OpenOptions::new().read(true).write(true).open(&args.serial) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("viogpu-guest-runner: {}: {e}", args.serial);
            return ExitCode::FAILURE;
        }
    };
    let mut output = match port.try_clone() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("viogpu-guest-runner: {}: {e}", args.serial);
            return ExitCode::FAILURE;
        }
    };
    // A setup failure is reported as the answer to every command, so the host sees it.
    let mut state = State::open(&args).map_err(|e| format!("setup failed: {e}"));
    if let Err(e) = &state {
        eprintln!("viogpu-guest-runner: {e}");
    }
    let mut reply = |text: String| -> io::Result<()> {
        output.write_all(one_line(&text).as_bytes())?;
        output.write_all(b"\n")?;
        output.flush()
    };
    if reply("READY viogpu-guest-runner".into()).is_err() {
        return ExitCode::FAILURE;
    }
    for line in BufReader::new(port).lines() {
        let Ok(line) = line else { break };
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let answer = match &mut state {
            Ok(state) => match state.handle(line) {
                Ok(text) if text.is_empty() => "OK".to_string(),
                Ok(text) => format!("OK {text}"),
                Err(e) => format!("ERR {e}"),
            },
            Err(e) => format!("ERR {e}"),
        };
        if reply(answer).is_err() {
            break;
        }
    }
    ExitCode::SUCCESS
}

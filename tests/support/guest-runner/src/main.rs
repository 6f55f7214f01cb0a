//! The guest runner: started by the initramfs `/init` of the QEMU end-to-end guest, it finds
//! the virtio-gpu PCI function and answers a line protocol on a serial port.
//!
//! Protocol: after start it prints `READY viogpu-guest-runner`; then for each command line
//! the host sends it answers exactly one line, `OK [details]` or `ERR message`.
//!
//! | command            | answer                                                          |
//! |--------------------|-----------------------------------------------------------------|
//! | `ping`             | `OK pong`                                                       |
//! | `info`             | `OK pci=ADDR id=1af4:1050 bar=N bar_addr=0x.. bar_len=0x.. features=0x.. scanouts=N` |
//! | `display-info`     | `OK ID:WxH:on|off ...` for every scanout with a size (probe)    |
//! | `demo-fill R G B`  | `OK WxH`, scanout 0 filled with that color (probe)              |
//! | `dma-free`         | `OK BYTES` free in the DMA range                                |
//!
//! Usage: `viogpu-guest-runner --serial /dev/ttyS1 --dma BASE:SIZE` (hex or decimal).

#[cfg(target_os = "linux")]
mod runner;

#[cfg(target_os = "linux")]
fn main() -> std::process::ExitCode {
    runner::main()
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("viogpu-guest-runner only runs in the Linux QEMU guest");
}

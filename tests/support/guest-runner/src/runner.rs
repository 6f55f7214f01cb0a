//! The runner process: argument parsing, the DMA range, the device session, and the serial
//! line loop (see the crate docs in `main.rs`); commands are parsed in [`crate::commands`].

use std::fs::OpenOptions;
use std::io::{self, BufRead, BufReader, Write};
use std::process::ExitCode;

use viogpu_guest_runner::hosted::dma::DevMemHal;

use crate::commands;
use crate::session::Session;

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

fn one_line(s: &str) -> String {
    s.replace(['\r', '\n'], " ")
}

/// Runs the runner; the exit code says whether the serial port could be used.
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
    // The simulator echoes the driver's trace lines to stderr (the guest console) when this
    // is set; the console log is what is left to read after a failure.
    std::env::set_var("DXGKRNL_SIM_TRACE", "1");
    // A setup failure is reported as the answer to every command, so the host sees it.
    let mut state = DevMemHal::open(args.dma_base, args.dma_len)
        .map_err(|e| e.to_string())
        .and_then(Session::open)
        .map_err(|e| format!("setup failed: {e}"));
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
            Ok(session) => match commands::run(session, line) {
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

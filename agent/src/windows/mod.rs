//! The Windows layer: the executable's three roles, each a thin loop around the portable
//! logic.
//! - no argument: the service (`service`), started by the service control manager as
//!   LocalSystem; it keeps one helper running in the console session ([`crate::supervisor`]);
//! - `--session`: the helper (`helper`), the follower's loop in the user's session;
//! - `--once`: one follower round in the current session, its report on stderr (debugging).
//!
//! Calls are written to the documented signatures of `windows-sys`; each unsafe call is its
//! own block with the reason it is sound.

mod display;
mod escape;
mod helper;
mod registry;
mod service;
mod session;

/// The service's name (the INF's `AddService`); its `Parameters` key holds the settings.
pub const SERVICE_NAME: &str = "VioGpuAgent";

/// A UTF-16, NUL-terminated copy of `s`, for the `PCWSTR` parameters.
pub(crate) fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(core::iter::once(0)).collect()
}

/// Logs a line to the debugger (`OutputDebugStringW`: DebugView or WinDbg show it) and to
/// stderr (seen when run from a console with `--once` or `--session`).
pub(crate) fn log(line: &str) {
    let text = wide(&format!("viogpu-agent[{}]: {line}\n", std::process::id()));
    // SAFETY: `text` is NUL-terminated and outlives the call.
    unsafe { windows_sys::Win32::System::Diagnostics::Debug::OutputDebugStringW(text.as_ptr()) };
    eprintln!("viogpu-agent: {line}");
}

/// Milliseconds since boot (the follower's and the supervisor's clock).
pub(crate) fn now_ms() -> u64 {
    // SAFETY: no arguments; cannot fail.
    unsafe { windows_sys::Win32::System::SystemInformation::GetTickCount64() }
}

/// The executable's entry point on Windows: the process exit code.
pub fn main() -> i32 {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None => service::run(),
        Some("--session") => helper::run(),
        Some("--once") => helper::once(),
        Some(other) => {
            eprintln!(
                "usage: viogpu-agent [--session | --once] (unknown argument {other:?}); \
                 without an argument it runs as the {SERVICE_NAME} service"
            );
            2
        }
    }
}

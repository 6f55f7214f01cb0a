//! `viogpu-agent.exe`: the resolution agent's executable. Run by the service control manager
//! it is the service; started by the service with `--session` it is the helper in the user's
//! session; `--once` runs one follower round in the current session (for debugging). See
//! docs/windows.md.

#[cfg(windows)]
fn main() {
    std::process::exit(viogpu_agent::windows::main());
}

#[cfg(not(windows))]
fn main() {
    eprintln!("viogpu-agent runs on Windows; its logic is tested on Linux by `cargo test`");
    std::process::exit(2);
}

//! On a Windows target: wdk-build configuration and linking of displib. Elsewhere: nothing,
//! so that the host-independent driver code builds and tests on Linux.
fn main() {
    #[cfg(windows)]
    windows::main();
}

#[cfg(windows)]
mod windows {
    pub fn main() {
        // Filled in with the Windows packaging work.
    }
}

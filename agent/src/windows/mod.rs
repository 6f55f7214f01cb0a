//! The Windows layer (being written): service, helper, D3DKMT escape, display settings.

/// The executable's entry point on Windows.
pub fn main() -> i32 {
    1
}

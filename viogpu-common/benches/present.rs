//! Benchmark of the present path (filled in with the blit work).
fn main() {}

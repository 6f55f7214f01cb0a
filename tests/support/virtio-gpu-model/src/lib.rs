//! Test support (to be written).

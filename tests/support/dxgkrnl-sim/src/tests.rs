//! Unit tests of the simulator with a fake driver.

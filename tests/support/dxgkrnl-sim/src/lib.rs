//! A dxgkrnl simulator for testing viogpudo (placeholder root from the vidpn branch: only the
//! VidPN object model; the sim branch owns this file).

pub mod vidpn;

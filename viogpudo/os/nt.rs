//! Windows kernel backend (being written).

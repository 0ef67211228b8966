//! Benchmarks support crate (binaries live in src/bin).

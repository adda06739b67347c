//! Shared helpers for the benchmarks (file generators).

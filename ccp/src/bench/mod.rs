//! `ccp bench`: the project's own benchmarks. Each scenario starts what it
//! measures, measures a baseline in the same run, and reports ratios (see
//! DESIGN.md §5 and BENCHMARKS.md). Load goes to loopback only; every loop is
//! bounded in time and count.

pub mod echo;
pub mod load;
